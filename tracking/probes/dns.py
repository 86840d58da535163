"""The DNS records of a domain, as the domain's details show them.

Queried concurrently, each within ``probe_timeout_s``: the apex A, AAAA, MX, NS, TXT, SOA and
CAA; ``www.<domain>`` CNAME, or its A/AAAA when it has no CNAME; ``_dmarc.<domain>`` TXT.

NXDOMAIN and "no records of that type" are answers; SERVFAIL, REFUSED, timeouts and other errors
are failures, listed in :attr:`DnsLookup.failures` (the schedule retries in an hour for them).
The servers asked are the operator's (or the system's), so no private-address guard applies.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.resolver
import dns.rrset

from tracking.core.settings import Settings
from tracking.probes.resolver import failure_kind, make_dns_resolver

FailureKind = Literal["servfail", "timeout", "refused", "error"]

TYPE_ORDER = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "CAA")
APEX_TYPES = ("A", "AAAA", "MX", "NS", "TXT", "SOA", "CAA")


@dataclass(frozen=True)
class DnsRecord:
    name: str  # absolute owner name, lower case, ending with "." ("www.example.com.")
    type: str
    ttl: int
    value: str  # zone-file presentation form; absolute names end with "."


@dataclass(frozen=True)
class DnsLookup:
    # Ordered by name (apex first, then subdomains in DNS order), TYPE_ORDER, then value
    # (addresses numerically, other values as text with numbers compared as numbers).
    records: tuple[DnsRecord, ...]
    failures: tuple[tuple[str, str, FailureKind], ...]  # (name, type, kind), in query order
    nxdomain: bool  # the apex does not exist (an answer, not a failure)

    @property
    def failed(self) -> bool:
        """True when any query failed; NXDOMAIN and empty answers are answers."""
        return bool(self.failures)


@dataclass(frozen=True)
class _Outcome:
    """One query's result: the RRsets answered (CNAMEs followed included), or how it ended."""

    name: dns.name.Name
    type: str
    rrsets: tuple[dns.rrset.RRset, ...] = ()
    nxdomain: bool = False
    failure: FailureKind | None = None


async def lookup_records(domain: str, settings: Settings) -> DnsLookup:
    """Query the records of ``domain`` (a normalized domain name, e.g. ``example.com``)."""
    resolver = make_dns_resolver(settings)
    apex = dns.name.from_text(domain)
    www = dns.name.from_text("www", apex)
    dmarc = dns.name.from_text("_dmarc", apex)

    queries = [(apex, rtype) for rtype in APEX_TYPES]
    # www A/AAAA are asked at once rather than after the CNAME, so the whole look-up takes one
    # timeout at most; they are kept only when www has no CNAME.
    queries += [(dmarc, "TXT"), (www, "CNAME"), (www, "A"), (www, "AAAA")]
    outcomes = list(await asyncio.gather(*(_query(resolver, n, t) for n, t in queries)))
    www_cname = outcomes[-3]
    if www_cname.rrsets or www_cname.nxdomain or www_cname.failure is not None:
        del outcomes[-2:]

    return DnsLookup(
        records=_records(outcomes),
        failures=tuple(
            (o.name.to_text(), o.type, o.failure) for o in outcomes if o.failure is not None
        ),
        nxdomain=any(o.nxdomain for o in outcomes if o.name == apex),
    )


async def _query(resolver: dns.asyncresolver.Resolver, name: dns.name.Name, rtype: str) -> _Outcome:
    try:
        answer = await resolver.resolve(name, rtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return _Outcome(name, rtype, nxdomain=True)
    except dns.exception.DNSException as exc:
        return _Outcome(name, rtype, failure=_failure(exc))
    chain = answer.chaining_result
    if chain.answer is None:  # no records of this type (after any CNAMEs): an empty answer
        return _Outcome(name, rtype)
    return _Outcome(name, rtype, rrsets=(*chain.cnames, chain.answer))


def _failure(exc: dns.exception.DNSException) -> FailureKind:
    kind = failure_kind(exc)
    if kind == "servfail" or kind == "timeout" or kind == "refused":
        return kind
    return "error"


def _records(outcomes: list[_Outcome]) -> tuple[DnsRecord, ...]:
    # Keyed on the record itself, so one met through two queries (a CNAME chain) is listed once.
    found: dict[tuple[dns.name.Name, str, bytes], DnsRecord] = {}
    for outcome in outcomes:
        for rrset in outcome.rrsets:
            owner = rrset.name.canonicalize()
            rtype = dns.rdatatype.to_text(rrset.rdtype)
            for rdata in rrset:
                record = DnsRecord(owner.to_text(), rtype, rrset.ttl, rdata.to_text())
                found[(owner, rtype, rdata.to_digestable())] = record

    def order(key: tuple[dns.name.Name, str, bytes]) -> tuple[dns.name.Name, int, _ValueKey]:
        owner, rtype, _ = key
        rank = TYPE_ORDER.index(rtype) if rtype in TYPE_ORDER else len(TYPE_ORDER)
        return owner, rank, _value_key(rtype, found[key].value)  # owners in DNS order: apex first

    return tuple(found[key] for key in sorted(found, key=order))


_ValueKey = tuple[tuple[int, str], ...]


def _value_key(rtype: str, value: str) -> _ValueKey:
    """Addresses numerically; other values as text with numbers compared as numbers."""
    if rtype in ("A", "AAAA"):
        return ((int(ipaddress.ip_address(value)), ""),)
    parts = re.split(r"(\d+)", value)  # text at even positions, digit runs at odd ones
    return tuple((int(part), "") if i % 2 else (0, part) for i, part in enumerate(parts))
