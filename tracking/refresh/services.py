"""What the use cases need from the outside world, bundled: settings, database, probes, storage.

Adapters (the API, Dagster) build one ``Services`` with the real probes; tests may hand in
fakes for any probe, since each is a small protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Protocol

from cryptography import x509
from sqlalchemy.engine import Engine

from tracking.core.certificates import TrustRoots
from tracking.core.ratelimit import SlidingWindowLimit
from tracking.core.settings import Settings
from tracking.probes.dns import DnsLookup, lookup_records
from tracking.probes.registration import RegistrationOutcome, lookup_registration
from tracking.probes.resolver import Resolver, resolver_for
from tracking.probes.tls import RealTlsProbe, TlsProbe
from tracking.probes.truststore import load_trust_roots
from tracking.refresh.rawstore import RawStore


class RegistrationProbe(Protocol):
    async def lookup(self, domain: str) -> RegistrationOutcome: ...


class DnsProbe(Protocol):
    async def lookup(self, domain: str) -> DnsLookup: ...


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
    roots_override: Sequence[x509.Certificate] | None = field(default=None)
    # Forced updates a user may ask for, per worker process (see tracking.core.ratelimit).
    forced_updates: SlidingWindowLimit = field(
        default_factory=lambda: SlidingWindowLimit(limit=500, window=timedelta(minutes=10))
    )

    @cached_property
    def trust_roots(self) -> TrustRoots:
        """The system trust store plus ``DSTRACK_CA_BUNDLE``, read once."""
        if self.roots_override is not None:
            return TrustRoots(self.roots_override)
        return TrustRoots(load_trust_roots(self.settings.ca_bundle))


def build_services(settings: Settings, engine: Engine) -> Services:
    resolver = resolver_for(settings)
    return Services(
        settings=settings,
        engine=engine,
        tls=RealTlsProbe(settings, resolver),
        registration=RealRegistrationProbe(settings),
        dns=RealDnsProbe(settings),
        resolver=resolver,
        raw_store=RawStore(settings.data_dir),
    )
