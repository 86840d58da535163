"""A real authoritative DNS server on 127.0.0.1 (UDP and TCP, one ephemeral port) for tests.

It serves zones given as zone-file text or as a dict of names::

    zones = {
        "example.com.": {
            "A": ["192.0.2.1"],
            "MX": (3600, ["10 mail.example.com."]),  # (ttl, values)
            "TXT": '"v=spf1 -all"',
            "TTL": 60,                               # default TTL of this name's records
        },
        "www.example.com.": {"CNAME": "example.com."},
    }
    with DnsServer(zones) as server:
        settings = server.settings(probe_timeout_s=1)  # or server.nameservers_env (env var)
        server.set_fault("www.example.com.", "servfail")

Answers like an authoritative server: NXDOMAIN for unknown names inside its zones, NOERROR with
an empty answer for missing types (empty non-terminals included), REFUSED outside its zones,
CNAME chains followed across the zones it serves. In the dict form the zones are the top-most
names given (``example.com.`` above) unless ``origin=`` names one. Faults (``servfail``,
``refused``, ``nxdomain``, ``timeout`` = drop the query) are set per name, or per name and
type, at any time.

Runs in background threads, so sync and async tests can use it alike.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from tracking.core.settings import Nameserver, Settings

Fault = Literal["servfail", "refused", "timeout", "nxdomain"]
_FAULT_RCODES = {
    "servfail": dns.rcode.SERVFAIL,
    "refused": dns.rcode.REFUSED,
    "nxdomain": dns.rcode.NXDOMAIN,  # a broken server's answer for a name that does exist
}
# A type's values: one value, several, or (ttl, values).
RecordValues = str | Sequence[str] | tuple[int, str | Sequence[str]]
ZoneData = str | Mapping[str, Mapping[str, RecordValues | int]]

_MAX_CNAME_CHAIN = 8


class DnsServer:
    """See the module docstring. Use as a context manager, or ``start()`` / ``close()``."""

    def __init__(
        self,
        zones: ZoneData | None = None,
        *,
        origin: str | None = None,
        default_ttl: int = 300,
        host: str = "127.0.0.1",
    ) -> None:
        self.default_ttl = default_ttl
        self._host = host
        self._lock = threading.Lock()
        self._apexes: set[dns.name.Name] = set()
        self._rrsets: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset] = {}
        self._faults: dict[tuple[dns.name.Name, dns.rdatatype.RdataType | None], Fault] = {}
        self._queries: list[tuple[str, str]] = []
        self._transport: _Transport | None = None
        if zones is not None:
            self.load(zones, origin=origin)

    # -- data ---------------------------------------------------------------------------------

    def load(self, zones: ZoneData, *, origin: str | None = None) -> None:
        """Add a zone (zone-file text) or names (dict); ``origin`` declares the zone apex."""
        if isinstance(zones, str):
            self._load_text(zones, origin)
            return
        apex = _name(origin) if origin else None
        names = {_name(owner): spec for owner, spec in zones.items()}
        with self._lock:
            if apex is not None:
                self._apexes.add(apex)
            for owner in sorted(names):  # parents first, so they become the apexes
                if self._zone_of(owner) is None:
                    self._apexes.add(owner)
        for owner, spec in names.items():
            name_ttl = spec.get("TTL", spec.get("ttl"))
            for rtype, values in spec.items():
                if rtype.upper() == "TTL":
                    continue
                assert not isinstance(values, int), f"{rtype}: values, not an int"
                ttl = name_ttl if isinstance(name_ttl, int) else None
                if isinstance(values, tuple) and len(values) == 2 and isinstance(values[0], int):
                    ttl, values = values
                self.set_records(owner.to_text(), rtype, values, ttl=ttl)

    def _load_text(self, text: str, origin: str | None) -> None:
        # Dedented, so zones can be written as indented triple-quoted strings (leading blanks
        # mean "same owner" in a zone file).
        zone = dns.zone.from_text(
            textwrap.dedent(text), origin=origin, relativize=False, check_origin=False
        )
        assert zone.origin is not None
        with self._lock:
            self._apexes.add(zone.origin)
            for owner, rdataset in zone.iterate_rdatasets():
                self._rrsets[(owner, rdataset.rdtype)] = dns.rrset.from_rdata_list(
                    owner, rdataset.ttl, list(rdataset)
                )

    def set_records(
        self, name: str, rtype: str, values: str | Sequence[str], *, ttl: int | None = None
    ) -> None:
        """Replace the records of one name and type; no values removes them.

        Relative names in values are relative to the zone, as in a zone file. A name outside
        every zone becomes a zone of its own.
        """
        owner = _name(name)
        rdtype = dns.rdatatype.RdataType.make(rtype.upper())
        texts = [values] if isinstance(values, str) else list(values)
        with self._lock:
            zone = self._zone_of(owner)
            if zone is None:
                zone = owner
                self._apexes.add(owner)
            if not texts:
                self._rrsets.pop((owner, rdtype), None)
                return
            self._rrsets[(owner, rdtype)] = dns.rrset.from_text_list(
                owner,
                self.default_ttl if ttl is None else ttl,
                dns.rdataclass.IN,
                rdtype,
                texts,
                origin=zone,
                relativize=False,
            )

    def remove_name(self, name: str) -> None:
        """Remove every record of a name (it becomes NXDOMAIN unless it has children)."""
        owner = _name(name)
        with self._lock:
            for key in [key for key in self._rrsets if key[0] == owner]:
                del self._rrsets[key]

    def set_fault(self, name: str, fault: Fault | None, *, rtype: str | None = None) -> None:
        """Make queries for a name (or only its ``rtype``) fail; ``None`` clears the fault."""
        key = (_name(name), dns.rdatatype.RdataType.make(rtype.upper()) if rtype else None)
        with self._lock:
            if fault is None:
                self._faults.pop(key, None)
            else:
                self._faults[key] = fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def queries(self) -> list[tuple[str, str]]:
        """``(name, type)`` of each query received, oldest first: ``("example.com.", "A")``."""
        with self._lock:
            return list(self._queries)

    def clear_queries(self) -> None:
        with self._lock:
            self._queries.clear()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        if self._transport is None:
            raise RuntimeError("the DNS server is not started")
        return self._transport.address

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def nameserver(self) -> Nameserver:
        return Nameserver(*self.address)

    @property
    def nameservers_env(self) -> str:
        """The ``DSTRACK_DNS_NAMESERVERS`` value pointing at this server."""
        return nameservers_env(self)

    def settings(self, **overrides: Any) -> Settings:
        """``Settings`` using this server as the only nameserver (other fields as given)."""
        return Settings(dns_nameservers=(self.nameserver,), **overrides)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> DnsServer:
        if self._transport is None:
            self._transport = _Transport(self._host, self.handle_wire)
        return self

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- answering ----------------------------------------------------------------------------

    def _zone_of(self, name: dns.name.Name) -> dns.name.Name | None:
        """The closest enclosing apex (caller holds the lock)."""
        for candidate in (name, *_ancestors(name)):
            if candidate in self._apexes:
                return candidate
        return None

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response to a query, or None to drop it (a ``timeout`` fault)."""
        response = dns.message.make_response(query)
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        with self._lock:
            self._queries.append((qname.to_text(), dns.rdatatype.to_text(qtype)))
            fault = self._faults.get((qname, qtype)) or self._faults.get((qname, None))
            if fault == "timeout":
                return None
            if fault is not None:
                response.set_rcode(_FAULT_RCODES[fault])
                return response
            if question.rdclass != dns.rdataclass.IN or self._zone_of(qname) is None:
                response.set_rcode(dns.rcode.REFUSED)
                return response
            response.flags |= dns.flags.AA
            self._fill(response, qname, qtype)
        return response

    def _fill(
        self, response: dns.message.Message, qname: dns.name.Name, qtype: dns.rdatatype.RdataType
    ) -> None:
        """Answer section (following CNAMEs), rcode and the SOA of negative answers."""
        name = qname
        for _ in range(_MAX_CNAME_CHAIN):
            zone = self._zone_of(name)
            if zone is None:  # the chain left our zones: the client goes on from here
                return
            rrset = self._rrsets.get((name, qtype))
            cname = self._rrsets.get((name, dns.rdatatype.CNAME))
            if rrset is not None:
                response.answer.append(rrset)
                return
            if cname is None or qtype == dns.rdatatype.CNAME:
                if not self._exists(name):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                soa = self._rrsets.get((zone, dns.rdatatype.SOA))
                if soa is not None:
                    response.authority.append(soa)
                return
            response.answer.append(cname)
            name = cname[0].target

    def _exists(self, name: dns.name.Name) -> bool:
        """A name exists when it owns records or has descendants (an empty non-terminal)."""
        return name in self._apexes or any(
            owner == name or owner.is_subdomain(name) for owner, _ in self._rrsets
        )

    def handle_wire(self, wire: bytes, *, udp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # garbage: ignore it, as servers do
        response = self.answer(query)
        if response is None:
            return None
        # Over UDP, honour the client's size (512 without EDNS): truncation sends it to TCP.
        max_size = (query.payload if query.edns >= 0 else 512) if udp else 65535
        return response.to_wire(max_size=max_size, prefer_truncation=True)


def nameservers_env(*servers: DnsServer) -> str:
    """``DSTRACK_DNS_NAMESERVERS`` for the given servers, e.g. ``"127.0.0.1:40123"``."""
    return ",".join("{}:{}".format(*server.address) for server in servers)


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """An empty running fake DNS server; tests ``load()`` zones and set faults on it."""
    with DnsServer() as server:
        yield server


# -- sockets and threads -----------------------------------------------------------------------


class _Transport:
    """UDP and TCP on one port: a selector thread, plus a thread per open TCP connection.

    ``close()`` is immediate: a socketpair wakes the selector, and open TCP connections are shut
    down, which ends their threads' blocking reads.
    """

    def __init__(self, host: str, handle: Callable[..., bytes | None]) -> None:
        self._handle = handle
        self._udp, self._tcp = _bind_pair(host)
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stream_threads: list[threading.Thread] = []  # every one started, ended or not
        self._thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._udp.getsockname()[:2]
        return str(host), int(port)

    def close(self) -> None:
        self._wake_w.send(b"x")
        self._thread.join()
        with self._lock:
            connections = dict(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        # Also those that already left _connections but are still ending.
        with self._lock:
            threads = list(self._stream_threads)
        for thread in threads:
            thread.join()
        for sock in (self._udp, self._tcp, self._wake_r, self._wake_w):
            sock.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            for sock in (self._udp, self._tcp, self._wake_r):
                selector.register(sock, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    if key.fileobj is self._udp:
                        self._serve_datagram()
                    else:
                        self._accept()

    def _serve_datagram(self) -> None:
        with contextlib.suppress(OSError):
            data, client = self._udp.recvfrom(65535)
            reply = self._handle(data, udp=True)
            if reply is not None:
                self._udp.sendto(reply, client)

    def _accept(self) -> None:
        conn, _ = self._tcp.accept()
        thread = threading.Thread(
            target=self._serve_stream, args=(conn,), name="fake-dns-tcp", daemon=True
        )
        with self._lock:
            self._connections[conn] = thread
            self._stream_threads.append(thread)
        thread.start()

    def _serve_stream(self, conn: socket.socket) -> None:
        try:
            while True:
                length = _recv_exactly(conn, 2)
                wire = length and _recv_exactly(conn, int.from_bytes(length, "big"))
                if not wire:
                    return
                reply = self._handle(wire, udp=False)
                # A dropped query keeps the connection open and silent: the client times out.
                if reply is not None:
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.pop(conn, None)
            conn.close()


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes, or None when the connection ends first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _bind_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """UDP on an ephemeral port and TCP on the same port (retried if TCP's is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen()
        return udp, tcp
    raise RuntimeError("no free port for both UDP and TCP")


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text).canonicalize()


def _ancestors(name: dns.name.Name) -> Iterable[dns.name.Name]:
    while len(name) > 1:
        name = name.parent()
        yield name
