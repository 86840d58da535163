"""The fake DNS server answers like an authoritative server, over UDP and TCP."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.fakes.dns_server import DnsServer, ZoneData, nameservers_env
from tests.fakes.dns_server import dns_server as dns_server
from tracking.core.settings import Nameserver, Settings

ZONES: ZoneData = {
    "example.com.": {
        "A": ["192.0.2.1"],
        "SOA": "ns1 hostmaster 1 7200 3600 1209600 300",
        "MX": (3600, "10 mail"),
    },
    "www.example.com.": {"CNAME": "example.com."},
    "alias.example.com.": {"CNAME": "target.other.test."},
    "deep.sub.example.com.": {"TXT": '"x"'},
    "target.other.test.": {"A": "192.0.2.9"},
}


def ask(
    server: DnsServer, name: str, rtype: str, *, tcp: bool = False, timeout: float = 2
) -> dns.message.Message:
    query = dns.message.make_query(name, rtype)
    send = dns.query.tcp if tcp else dns.query.udp
    host, port = server.address
    return send(query, host, port=port, timeout=timeout)


def answer_texts(response: dns.message.Message) -> list[str]:
    return [rrset.to_text() for rrset in response.answer]


@pytest.fixture
def server() -> Iterator[DnsServer]:
    with DnsServer(ZONES) as running:
        yield running


@pytest.mark.parametrize("tcp", [False, True])
def test_answers_records_with_ttls_over_udp_and_tcp(server: DnsServer, tcp: bool) -> None:
    response = ask(server, "example.com.", "MX", tcp=tcp)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert answer_texts(response) == ["example.com. 3600 IN MX 10 mail.example.com."]


def test_unknown_name_in_zone_is_nxdomain_with_soa(server: DnsServer) -> None:
    response = ask(server, "nope.example.com.", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert [rrset.rdtype for rrset in response.authority] == [dns.rdatatype.SOA]


def test_missing_type_is_an_empty_noerror(server: DnsServer) -> None:
    response = ask(server, "example.com.", "AAAA")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []


def test_empty_non_terminal_exists(server: DnsServer) -> None:
    assert ask(server, "sub.example.com.", "A").rcode() == dns.rcode.NOERROR


def test_names_outside_the_zones_are_refused(server: DnsServer) -> None:
    assert ask(server, "example.org.", "A").rcode() == dns.rcode.REFUSED
    assert ask(server, "com.", "A").rcode() == dns.rcode.REFUSED


def test_cname_chains_are_followed_across_zones(server: DnsServer) -> None:
    assert answer_texts(ask(server, "www.example.com.", "A")) == [
        "www.example.com. 300 IN CNAME example.com.",
        "example.com. 300 IN A 192.0.2.1",
    ]
    assert answer_texts(ask(server, "alias.example.com.", "A"))[-1] == (
        "target.other.test. 300 IN A 192.0.2.9"
    )
    # Asking for the CNAME itself gives just the CNAME.
    assert answer_texts(ask(server, "www.example.com.", "CNAME")) == [
        "www.example.com. 300 IN CNAME example.com."
    ]


def test_faults_are_set_and_cleared_at_runtime(server: DnsServer) -> None:
    server.set_fault("example.com.", "servfail")
    assert ask(server, "example.com.", "A").rcode() == dns.rcode.SERVFAIL
    server.set_fault("example.com.", "refused")
    assert ask(server, "example.com.", "A").rcode() == dns.rcode.REFUSED
    server.set_fault("example.com.", None)
    assert ask(server, "example.com.", "A").rcode() == dns.rcode.NOERROR


def test_fault_on_one_type_only(server: DnsServer) -> None:
    server.set_fault("example.com.", "servfail", rtype="MX")
    assert ask(server, "example.com.", "MX").rcode() == dns.rcode.SERVFAIL
    assert ask(server, "example.com.", "A").rcode() == dns.rcode.NOERROR
    server.clear_faults()
    assert ask(server, "example.com.", "MX").rcode() == dns.rcode.NOERROR


@pytest.mark.parametrize("tcp", [False, True])
def test_timeout_fault_drops_the_query(server: DnsServer, tcp: bool) -> None:
    server.set_fault("example.com.", "timeout")
    with pytest.raises(dns.exception.Timeout):
        ask(server, "example.com.", "A", tcp=tcp, timeout=0.3)


def test_large_answers_are_truncated_over_udp_and_complete_over_tcp(server: DnsServer) -> None:
    values = [f'"{"x" * 200}-{i}"' for i in range(10)]
    server.set_records("big.example.com.", "TXT", values)
    udp = ask(server, "big.example.com.", "TXT")
    assert udp.flags & dns.flags.TC
    tcp = ask(server, "big.example.com.", "TXT", tcp=True)
    assert len(tcp.answer[0]) == 10


def test_zone_file_text(dns_server: DnsServer) -> None:
    dns_server.load(
        """
        $ORIGIN zone.test.
        $TTL 60
        @    IN SOA ns1 hostmaster 1 7200 3600 1209600 300
        @    IN NS  ns1
        ns1  IN A   192.0.2.53
        www  120 IN CNAME @
        """
    )
    assert answer_texts(ask(dns_server, "ns1.zone.test.", "A")) == [
        "ns1.zone.test. 60 IN A 192.0.2.53"
    ]
    assert answer_texts(ask(dns_server, "www.zone.test.", "CNAME")) == [
        "www.zone.test. 120 IN CNAME zone.test."
    ]
    assert ask(dns_server, "nope.zone.test.", "A").rcode() == dns.rcode.NXDOMAIN


def test_explicit_origin_makes_other_names_nxdomain(dns_server: DnsServer) -> None:
    dns_server.load({"good.test.": {"A": "127.0.0.1"}}, origin="test.")
    assert ask(dns_server, "lalala.test.", "A").rcode() == dns.rcode.NXDOMAIN


def test_records_change_at_runtime(server: DnsServer) -> None:
    server.set_records("example.com.", "A", ["192.0.2.7"], ttl=30)
    assert answer_texts(ask(server, "example.com.", "A")) == ["example.com. 30 IN A 192.0.2.7"]
    server.set_records("example.com.", "A", [])
    assert ask(server, "example.com.", "A").answer == []
    server.remove_name("deep.sub.example.com.")
    assert ask(server, "deep.sub.example.com.", "TXT").rcode() == dns.rcode.NXDOMAIN


def test_queries_are_logged(server: DnsServer) -> None:
    ask(server, "Example.COM.", "A")
    assert server.queries == [("Example.COM.", "A")]
    server.clear_queries()
    assert server.queries == []


def test_addresses_and_settings(server: DnsServer) -> None:
    host, port = server.address
    assert host == "127.0.0.1" and port == server.port > 0
    assert server.nameservers_env == nameservers_env(server) == f"127.0.0.1:{port}"
    settings = Settings.from_env({"DSTRACK_DNS_NAMESERVERS": server.nameservers_env})
    assert settings.dns_nameservers == (Nameserver("127.0.0.1", port),) == (server.nameserver,)
    assert server.settings(probe_timeout_s=1).dns_nameservers == settings.dns_nameservers


def test_close_stops_every_thread_even_with_a_held_tcp_connection() -> None:
    before = set(threading.enumerate())  # other tests' threads may come and go meanwhile
    server = DnsServer(ZONES).start()
    server.set_fault("example.com.", "timeout")
    with pytest.raises(dns.exception.Timeout):
        ask(server, "example.com.", "A", tcp=True, timeout=0.2)
    # Only the server's own threads (named fake-dns*): another test's may start meanwhile.
    started = {
        t for t in threading.enumerate() if t not in before and t.name.startswith("fake-dns")
    }
    assert {t.name for t in started} >= {"fake-dns", "fake-dns-tcp"}
    server.close()
    assert not any(t.is_alive() for t in started)
    with pytest.raises(RuntimeError):
        _ = server.address
