"""DNS records of a domain, against the fake authoritative server."""

from __future__ import annotations

import time

import pytest

from tests.fakes.dns_server import DnsServer
from tracking.probes.dns import DnsLookup, DnsRecord, lookup_records

EXAMPLE_ZONE = """
    $ORIGIN example.com.
    $TTL 300
    @       3600 IN SOA  ns1 hostmaster 2024010101 7200 3600 1209600 300
    @       86400 IN NS  ns2.example.net.
    @       86400 IN NS  ns1
    @       IN A     192.0.2.10
    @       IN A     192.0.2.9
    @       IN AAAA  2001:db8::1
    @       IN MX    20 backup.mail.example.net.
    @       IN MX    5 mail
    @       IN TXT   "v=spf1 -all"
    @       IN TXT   "google-site-verification=abc" "second string"
    @       IN CAA   0 issue "letsencrypt.org"
    @       IN CAA   128 iodef "mailto:security@example.com"
    www     60 IN CNAME @
    _dmarc  IN TXT   "v=DMARC1; p=reject"
    ns1     IN A     192.0.2.53
"""

EXPECTED = (
    DnsRecord("example.com.", "A", 300, "192.0.2.9"),
    DnsRecord("example.com.", "A", 300, "192.0.2.10"),
    DnsRecord("example.com.", "AAAA", 300, "2001:db8::1"),
    DnsRecord("example.com.", "MX", 300, "5 mail.example.com."),
    DnsRecord("example.com.", "MX", 300, "20 backup.mail.example.net."),
    DnsRecord("example.com.", "NS", 86400, "ns1.example.com."),
    DnsRecord("example.com.", "NS", 86400, "ns2.example.net."),
    DnsRecord("example.com.", "TXT", 300, '"google-site-verification=abc" "second string"'),
    DnsRecord("example.com.", "TXT", 300, '"v=spf1 -all"'),
    DnsRecord(
        "example.com.",
        "SOA",
        3600,
        "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300",
    ),
    DnsRecord("example.com.", "CAA", 300, '0 issue "letsencrypt.org"'),
    DnsRecord("example.com.", "CAA", 300, '128 iodef "mailto:security@example.com"'),
    DnsRecord("_dmarc.example.com.", "TXT", 300, '"v=DMARC1; p=reject"'),
    DnsRecord("www.example.com.", "CNAME", 60, "example.com."),
)


async def lookup(server: DnsServer, domain: str = "example.com", timeout_s: float = 2) -> DnsLookup:
    return await lookup_records(domain, server.settings(probe_timeout_s=timeout_s))


@pytest.fixture
def server(dns_server: DnsServer) -> DnsServer:
    dns_server.load(EXAMPLE_ZONE)
    return dns_server


async def test_every_record_type_in_presentation_form_and_stable_order(server: DnsServer) -> None:
    result = await lookup(server)
    assert result.records == EXPECTED
    assert (result.failures, result.nxdomain, result.failed) == ((), False, False)


async def test_the_contract_queries_are_asked(server: DnsServer) -> None:
    await lookup(server)
    asked = set(server.queries)
    apex = {("example.com.", t) for t in ("A", "AAAA", "MX", "NS", "TXT", "SOA", "CAA")}
    assert apex | {("www.example.com.", "CNAME"), ("_dmarc.example.com.", "TXT")} <= asked
    assert not {name for name, _ in asked} - {
        "example.com.",
        "www.example.com.",
        "_dmarc.example.com.",
    }


async def test_order_does_not_depend_on_the_server(dns_server: DnsServer) -> None:
    dns_server.load({"order.test.": {"A": ["192.0.2.2", "192.0.2.1"], "TXT": ['"b"', '"a"']}})
    first = await lookup(dns_server, "order.test")
    dns_server.set_records("order.test.", "A", ["192.0.2.1", "192.0.2.2"])
    dns_server.set_records("order.test.", "TXT", ['"a"', '"b"'])
    assert (await lookup(dns_server, "order.test")).records == first.records
    assert [r.value for r in first.records] == ["192.0.2.1", "192.0.2.2", '"a"', '"b"']


async def test_www_addresses_when_www_has_no_cname(dns_server: DnsServer) -> None:
    dns_server.load(
        {
            "plain.test.": {"A": "192.0.2.1"},
            "www.plain.test.": {"A": "192.0.2.80", "AAAA": "2001:db8::80", "TTL": 30},
        }
    )
    result = await lookup(dns_server, "plain.test")
    assert result.records == (
        DnsRecord("plain.test.", "A", 300, "192.0.2.1"),
        DnsRecord("www.plain.test.", "A", 30, "192.0.2.80"),
        DnsRecord("www.plain.test.", "AAAA", 30, "2001:db8::80"),
    )
    assert not result.failed


async def test_www_cname_is_recorded_without_its_target_addresses(dns_server: DnsServer) -> None:
    dns_server.load(
        {
            "cdn.test.": {"A": "192.0.2.1"},
            "www.cdn.test.": {"CNAME": "edge.provider.test."},
            "edge.provider.test.": {"A": "192.0.2.99"},
        }
    )
    result = await lookup(dns_server, "cdn.test")
    assert result.records == (
        DnsRecord("cdn.test.", "A", 300, "192.0.2.1"),
        DnsRecord("www.cdn.test.", "CNAME", 300, "edge.provider.test."),
    )


async def test_dmarc_through_a_cname_records_the_chain(dns_server: DnsServer) -> None:
    dns_server.load(
        {
            "brand.test.": {"A": "192.0.2.1"},
            "_dmarc.brand.test.": {"CNAME": "brand.test._d.dmarc.test."},
            "brand.test._d.dmarc.test.": {"TXT": '"v=DMARC1; p=none"'},
        }
    )
    records = (await lookup(dns_server, "brand.test")).records
    assert DnsRecord("_dmarc.brand.test.", "CNAME", 300, "brand.test._d.dmarc.test.") in records
    assert DnsRecord("brand.test._d.dmarc.test.", "TXT", 300, '"v=DMARC1; p=none"') in records


async def test_missing_records_are_answers_not_failures(dns_server: DnsServer) -> None:
    dns_server.load({"bare.test.": {"A": "192.0.2.1"}})
    result = await lookup(dns_server, "bare.test")
    assert result.records == (DnsRecord("bare.test.", "A", 300, "192.0.2.1"),)
    assert (result.failed, result.nxdomain) == (False, False)


async def test_nxdomain_apex_is_an_answer(dns_server: DnsServer) -> None:
    dns_server.load({"exists.test.": {"A": "192.0.2.1"}}, origin="test.")
    result = await lookup(dns_server, "lalala.test")
    assert result == DnsLookup(records=(), failures=(), nxdomain=True)
    assert not result.failed


async def test_servfail_on_one_type_fails_the_lookup(server: DnsServer) -> None:
    server.set_fault("example.com.", "servfail", rtype="MX")
    result = await lookup(server)
    assert result.failed
    assert result.failures == (("example.com.", "MX", "servfail"),)
    assert result.records == tuple(r for r in EXPECTED if r.type != "MX")


async def test_servfail_on_www_is_one_failure(server: DnsServer) -> None:
    server.set_fault("www.example.com.", "servfail")
    result = await lookup(server)
    assert result.failures == (("www.example.com.", "CNAME", "servfail"),)


async def test_timeout_fails_the_lookup_within_one_timeout(server: DnsServer) -> None:
    server.set_fault("_dmarc.example.com.", "timeout")
    started = time.monotonic()
    result = await lookup(server, timeout_s=1.0)  # the other queries must answer within it
    assert time.monotonic() - started < 3  # queries run concurrently
    assert result.failures == (("_dmarc.example.com.", "TXT", "timeout"),)
    assert result.failed and not result.nxdomain
    assert len(result.records) == len(EXPECTED) - 1


async def test_refused(server: DnsServer) -> None:
    result = await lookup(server, "example.org")
    assert result.failed and not result.nxdomain and result.records == ()
    assert {kind for _, _, kind in result.failures} == {"refused"}
    assert ("example.org.", "SOA", "refused") in result.failures


async def test_unreachable_nameserver_fails() -> None:
    with DnsServer() as gone:
        settings = gone.settings(probe_timeout_s=0.5)
    result = await lookup_records("example.com", settings)
    assert result.failed and not result.nxdomain
    assert {kind for _, _, kind in result.failures} <= {"error", "timeout"}


async def test_large_answers_fall_back_to_tcp(server: DnsServer) -> None:
    values = [f'"{"k" * 200}-{i}"' for i in range(10)]
    server.set_records("example.com.", "TXT", values)
    txt = [
        r for r in (await lookup(server)).records if r.name == "example.com." and r.type == "TXT"
    ]
    assert len(txt) == 10
