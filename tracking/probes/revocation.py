"""Revocation checking over the network: the leaf's OCSP responder (RFC 6960, HTTP POST), else
its CRL, each answer verified (``tracking.core.revocation``) and cached for every device.

Every fetch goes through the guarded HTTP client (the private-address guard, the probe timeout,
a size bound: 64 KiB for an OCSP answer or an issuer certificate, 20 MiB for a CRL). The issuer
certificate is the chain's next certificate, else the one at the AIA caIssuers URL. Answers,
CRLs, issuer certificates and failures are kept in one :class:`ExpiringCache` per checker
(the policy of ``tracking.core.revocation_cache``), and two devices asking for the same URL at
the same moment share one fetch. Anything that goes wrong is ``UNAVAILABLE``, never ``GOOD``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from urllib.parse import urljoin

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tracking.core import clock
from tracking.core.revocation import (
    OcspAnswer,
    Revocation,
    RevocationPoints,
    RevocationStatus,
    UntrustedAnswer,
    VerifiedCrl,
    crl_status,
    issuer_among,
    load_issuer_certificate,
    ocsp_request,
    read_crl,
    read_ocsp,
    revocation_points,
)
from tracking.core.revocation_cache import CachePolicy, ExpiringCache, MiB
from tracking.core.settings import Settings
from tracking.probes.httpclient import FetchError, HttpAnswer, guarded_http_client
from tracking.probes.resolver import Resolver

log = logging.getLogger(__name__)

OCSP_MAX_BYTES = 64 * 1024
ISSUER_MAX_BYTES = 64 * 1024
CRL_MAX_BYTES = 20 * MiB
URLS_TRIED = 2  # of each kind: responders, CRLs, caIssuers
REDIRECTS = 3  # followed for GETs (each target passes the guard again)
# CRLs larger than this are parsed and verified in a thread, away from the event loop.
_THREAD_PARSE_BYTES = 256 * 1024
_OCSP_HEADERS = {
    "content-type": "application/ocsp-request",
    "accept": "application/ocsp-response",
}


@dataclass(frozen=True)
class Unavailable:
    """A fetch that gave nothing usable (cached briefly, like an answer)."""

    detail: str


Kept = OcspAnswer | VerifiedCrl | x509.Certificate | Unavailable


@dataclass(frozen=True)
class _Fetched:
    value: OcspAnswer | VerifiedCrl | x509.Certificate
    size: int
    next_update: datetime | None


class RevocationChecker:
    """Asks OCSP responders and CRLs about leaf certificates, for every device of the process.

    ``check`` bounds itself to three probe timeouts (an issuer fetch, a responder, a CRL).
    ``fetches`` counts the HTTP exchanges made (for tests and benchmarks).
    """

    def __init__(
        self, settings: Settings, resolver: Resolver, policy: CachePolicy | None = None
    ) -> None:
        self._settings = settings
        self._resolver = resolver
        self._timeout_s = settings.probe_timeout_s
        self._cache: ExpiringCache[Kept] = ExpiringCache(policy or CachePolicy())
        self._lock = threading.Lock()
        self._inflight: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Task[Kept]] = {}
        self.fetches = 0

    async def check(self, chain: Sequence[x509.Certificate], *, crl: bool = True) -> Revocation:
        """The status of ``chain[0]``; ``crl`` False asks OCSP responders only."""
        leaf = chain[0]
        try:
            points = revocation_points(leaf)
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            return Revocation(
                RevocationStatus.UNAVAILABLE, detail="the certificate's extensions are unreadable"
            )
        if not points.ocsp and not (crl and points.crls):
            nobody = "no OCSP responder" + ("" if not crl else " and no CRL")
            return Revocation(
                RevocationStatus.UNAVAILABLE, detail=f"the certificate names {nobody}"
            )
        now = clock.now()
        try:
            async with asyncio.timeout(3 * self._timeout_s):
                return await self._check(leaf, chain[1:], points, crl=crl, now=now)
        except TimeoutError:
            detail = f"no answer within {3 * self._timeout_s:g} s"
            return Revocation(RevocationStatus.UNAVAILABLE, checked_at=now, detail=detail)

    async def _check(
        self,
        leaf: x509.Certificate,
        rest: Sequence[x509.Certificate],
        points: RevocationPoints,
        *,
        crl: bool,
        now: datetime,
    ) -> Revocation:
        issuer = await self._issuer(leaf, rest, points.ca_issuers)
        if isinstance(issuer, Unavailable):
            return Revocation(RevocationStatus.UNAVAILABLE, checked_at=now, detail=issuer.detail)
        failures: list[str] = []
        for url in points.ocsp[:URLS_TRIED]:
            key = f"ocsp {url} {_key_id(issuer)} {leaf.serial_number:x}"
            answer = await self._kept(key, partial(self._fetch_ocsp, url, leaf, issuer))
            if isinstance(answer, OcspAnswer):
                return _revocation(answer, now, f"OCSP {url}")
            failures.append(f"OCSP {url}: {_detail(answer)}")
        for url in points.crls[:URLS_TRIED] if crl else ():
            key = f"crl {url} {_key_id(issuer)}"
            answer = await self._kept(key, partial(self._fetch_crl, url, issuer))
            if isinstance(answer, VerifiedCrl):
                return _revocation(crl_status(answer, leaf), now, f"CRL {url}")
            failures.append(f"CRL {url}: {_detail(answer)}")
        return Revocation(RevocationStatus.UNAVAILABLE, checked_at=now, detail="; ".join(failures))

    async def _issuer(
        self, leaf: x509.Certificate, rest: Sequence[x509.Certificate], urls: Sequence[str]
    ) -> x509.Certificate | Unavailable:
        found = issuer_among(leaf, rest[:4])
        if found is not None:
            return found
        for url in urls[:URLS_TRIED]:
            got = await self._kept(f"issuer {url}", partial(self._fetch_issuer, url))
            if isinstance(got, x509.Certificate) and issuer_among(leaf, [got]) is not None:
                return got
        return Unavailable("the issuer's certificate is neither in the chain nor at its URL")

    # --- the cache, and one fetch per key ----------------------------------------------------

    async def _kept(self, key: str, fetch: Callable[[], Awaitable[_Fetched]]) -> Kept:
        """The cached value under ``key``, else the result of the one fetch in flight for it."""
        with self._lock:
            hit = self._cache.get(key, clock.now())
        if hit is not None:
            return hit
        loop = asyncio.get_running_loop()
        flight = (loop, key)
        task = self._inflight.get(flight)
        if task is None:
            task = loop.create_task(self._fetch_and_keep(key, fetch))
            self._inflight[flight] = task
            task.add_done_callback(lambda _: self._inflight.pop(flight, None))
        return await asyncio.shield(task)

    async def _fetch_and_keep(self, key: str, fetch: Callable[[], Awaitable[_Fetched]]) -> Kept:
        value: Kept
        try:
            fetched = await fetch()
        except (FetchError, UntrustedAnswer) as exc:
            value = Unavailable(exc.message if isinstance(exc, FetchError) else str(exc))
        except Exception:  # a bug must give UNAVAILABLE, not take the update down
            log.exception("revocation check: %s failed unexpectedly", key)
            value = Unavailable("unexpected error")
        else:
            now = clock.now()
            with self._lock:
                self._cache.put(
                    key,
                    fetched.value,
                    size=fetched.size,
                    expires_at=self._cache.policy.expires_at(now, fetched.next_update),
                    now=now,
                )
            return fetched.value
        now = clock.now()
        with self._lock:
            self._cache.put(
                key,
                value,
                size=len(value.detail),
                expires_at=self._cache.policy.failure_expires_at(now),
                now=now,
            )
        return value

    # --- fetches ------------------------------------------------------------------------------

    async def _fetch_ocsp(
        self, url: str, leaf: x509.Certificate, issuer: x509.Certificate
    ) -> _Fetched:
        answer = await self._exchange(
            url,
            max_bytes=OCSP_MAX_BYTES,
            method="POST",
            content=ocsp_request(leaf, issuer),
            headers=_OCSP_HEADERS,
        )
        parsed = read_ocsp(answer.body, leaf, issuer, clock.now())
        return _Fetched(parsed, len(answer.body), parsed.next_update)

    async def _fetch_crl(self, url: str, issuer: x509.Certificate) -> _Fetched:
        answer = await self._exchange(url, max_bytes=CRL_MAX_BYTES)
        now = clock.now()
        if len(answer.body) > _THREAD_PARSE_BYTES:
            verified = await asyncio.to_thread(read_crl, answer.body, issuer, url, now)
        else:
            verified = read_crl(answer.body, issuer, url, now)
        return _Fetched(verified, verified.memory, verified.next_update)

    async def _fetch_issuer(self, url: str) -> _Fetched:
        answer = await self._exchange(url, max_bytes=ISSUER_MAX_BYTES)
        cert = load_issuer_certificate(answer.body)
        return _Fetched(cert, len(answer.body), cert.not_valid_after_utc)

    async def _exchange(
        self,
        url: str,
        *,
        max_bytes: int,
        method: str = "GET",
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpAnswer:
        """One answer with status 200, following a few redirects for a GET."""
        async with guarded_http_client(self._settings, self._resolver) as http:
            for _ in range(REDIRECTS + 1):
                self.fetches += 1
                answer = await http.fetch(
                    url, max_bytes=max_bytes, method=method, content=content, headers=headers
                )
                target = urljoin(url, answer.location or "")
                if (
                    method == "GET"
                    and answer.status in (301, 302, 303, 307, 308)
                    and answer.location
                    and target.lower().startswith(("http://", "https://"))
                ):
                    url = target
                    continue
                if answer.status != 200:
                    raise UntrustedAnswer(f"HTTP status {answer.status}")
                return answer
        raise UntrustedAnswer(f"more than {REDIRECTS} redirects")


def _revocation(answer: OcspAnswer, now: datetime, source: str) -> Revocation:
    return Revocation(
        status=answer.status,
        checked_at=now,
        revoked_at=answer.revoked_at,
        reason=answer.reason,
        source=source,
    )


def _detail(kept: Kept) -> str:
    return kept.detail if isinstance(kept, Unavailable) else "not usable"


@lru_cache(maxsize=1024)
def _key_id(issuer: x509.Certificate) -> str:
    """Short and stable for an issuer's name and key (an answer is about a name and a key)."""
    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(issuer.subject.public_bytes() + spki).hexdigest()[:32]
