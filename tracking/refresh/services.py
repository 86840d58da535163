"""What the use cases need from the outside world, bundled: settings, database, probes, storage
and the subscribers of the update pipeline.

Adapters (the API, Dagster) get one from ``tracking.wiring.build_services`` with the real
probes; tests may hand in fakes for any probe, since each is a small protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from cryptography import x509
from sqlalchemy.engine import Engine

from tracking.core.revocation import Revocation
from tracking.core.settings import Settings
from tracking.core.verdicts import TrustRoots
from tracking.probes.dns import DnsLookup, lookup_records
from tracking.probes.registration import RegistrationOutcome, lookup_registration
from tracking.probes.resolver import Resolver
from tracking.probes.tls import TlsProbe
from tracking.probes.truststore import load_trust_roots
from tracking.refresh.events import UpdateSubscriber
from tracking.refresh.rawstore import RawStore


class RegistrationProbe(Protocol):
    async def lookup(self, domain: str) -> RegistrationOutcome: ...


class DnsProbe(Protocol):
    async def lookup(self, domain: str) -> DnsLookup: ...


class RevocationProbe(Protocol):
    """``tracking.probes.revocation.RevocationChecker``: a leaf's OCSP / CRL status."""

    async def check(self, chain: Sequence[x509.Certificate], *, crl: bool = True) -> Revocation: ...


@dataclass(frozen=True)
class RealRegistrationProbe:
    """RDAP first, WHOIS as fallback (``tracking.probes.registration``)."""

    settings: Settings

    async def lookup(self, domain: str) -> RegistrationOutcome:
        return await lookup_registration(domain, self.settings)


@dataclass(frozen=True)
class RealDnsProbe:
    settings: Settings

    async def lookup(self, domain: str) -> DnsLookup:
        return await lookup_records(domain, self.settings)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    tls: TlsProbe
    registration: RegistrationProbe
    dns: DnsProbe
    resolver: Resolver
    raw_store: RawStore
    # Told of every batch of updates, after the pipeline's own (RAW files, Activity notes).
    subscribers: tuple[UpdateSubscriber, ...] = ()
    roots_override: Sequence[x509.Certificate] | None = field(default=None)
    # None: revocation is not checked (every status UNAVAILABLE).
    revocation: RevocationProbe | None = None

    @cached_property
    def trust_roots(self) -> TrustRoots:
        """The system trust store plus ``DSTRACK_CA_BUNDLE``, read once."""
        if self.roots_override is not None:
            return TrustRoots(self.roots_override)
        return TrustRoots(load_trust_roots(self.settings.ca_bundle))
