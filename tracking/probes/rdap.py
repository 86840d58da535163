"""RDAP look-ups (RFC 9082/9083) with the IANA bootstrap (RFC 9224, formerly RFC 7484).

Each HTTP exchange has one deadline (``probe_timeout_s``) and a body size cap, and connects
through the private-address guard (:mod:`tracking.probes.httpclient`). The bootstrap server and
the RDAP base URL it names come from the operator's configuration and IANA: their hosts are
trusted. Any other host (a redirect target, a registrar link) comes from an answer and must be
public unless ``allow_private_targets`` is set. Whatever the host, a URL an answer names must use
its scheme's default port (443, 80) or the bootstrap URL's port, and a redirect must keep the
scheme of the URL it answers: a hostile registry cannot send us to another service of a host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit
from urllib.request import url2pathname

from tracking.core.registration import LookupFailureKind as Kind
from tracking.core.registration import RegistryLookupError, ascii_domain
from tracking.core.settings import Settings
from tracking.probes.httpclient import FetchError, HttpAnswer, guarded_http_client, size_text
from tracking.probes.resolver import Resolver

log = logging.getLogger(__name__)

RDAP_MAX_BYTES = 2 * 1024 * 1024
BOOTSTRAP_MAX_BYTES = 4 * 1024 * 1024
BOOTSTRAP_TTL_S = 24 * 3600.0
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_HEADERS = {"Accept": "application/rdap+json, application/json;q=0.9", "User-Agent": "dstrack"}


@dataclass(frozen=True)
class RdapAnswer:
    """A domain object: the URL that answered (after redirects), the JSON and the body as sent."""

    url: str
    data: Mapping[str, Any]
    text: str


@dataclass(frozen=True)
class RdapNotFound:
    """The registry's RDAP service answered 404 (the body as sent): it has no such domain."""

    url: str
    text: str = ""


@dataclass(frozen=True)
class RdapNoService:
    """The bootstrap names no RDAP service for the domain's TLD: ask WHOIS instead."""

    tld: str


RdapResult = RdapAnswer | RdapNotFound | RdapNoService


def _fail(kind: str, message: str) -> RegistryLookupError:
    return RegistryLookupError("RDAP", kind, message)


# --- bootstrap ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bootstrap:
    """The ``services`` of an IANA ``dns.json``: domain suffixes -> RDAP base URLs."""

    services: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_json(cls, data: object) -> Bootstrap:
        if not isinstance(data, Mapping) or not isinstance(data.get("services"), list):
            raise _fail(Kind.INVALID_ANSWER, "the RDAP bootstrap has no services list")
        services: dict[str, tuple[str, ...]] = {}
        for entry in data["services"]:
            if not (isinstance(entry, list) and len(entry) >= 2):
                continue  # RFC 9224 lets a client skip what it does not understand
            suffixes, urls = entry[0], entry[1]
            if not (isinstance(suffixes, list) and isinstance(urls, list)):
                continue
            clean = tuple(u for u in urls if isinstance(u, str) and u.startswith("http"))
            for suffix in suffixes:
                if isinstance(suffix, str) and clean:
                    services[suffix.strip(".").lower()] = clean
        return cls(services)

    def base_url(self, domain: str) -> str | None:
        """The base URL for the longest matching suffix (label-wise), HTTPS preferred."""
        labels = ascii_domain(domain).split(".")
        for i in range(len(labels)):
            urls = self.services.get(".".join(labels[i:]))
            if urls:
                url = next((u for u in urls if u.startswith("https://")), urls[0])
                return url if url.endswith("/") else url + "/"
        return None


_bootstrap_cache: dict[str, tuple[float, Bootstrap]] = {}


def clear_bootstrap_cache() -> None:
    _bootstrap_cache.clear()


# --- the client --------------------------------------------------------------------------------


class RdapClient:
    """One look-up session (``async with``): the bootstrap, the registry, its registrar."""

    def __init__(self, settings: Settings, resolver: Resolver | None = None) -> None:
        self._settings = settings
        self._http = guarded_http_client(settings, resolver, headers=_HEADERS)
        bootstrap = urlsplit(settings.rdap_bootstrap_url)
        # Besides each scheme's default port, answers may name the configured bootstrap's.
        self._bootstrap_port = _port(bootstrap) if bootstrap.scheme in _DEFAULT_PORTS else None

    async def __aenter__(self) -> RdapClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    async def bootstrap(self) -> Bootstrap:
        """The bootstrap of ``settings.rdap_bootstrap_url``, cached in-process for 24 h."""
        url = self._settings.rdap_bootstrap_url
        cached = _bootstrap_cache.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if url.startswith("file:"):
            body = await _read_file(url, self._settings)
        else:
            self._http.trust(url)
            answer = await self._get(url, BOOTSTRAP_MAX_BYTES)
            if answer.status != 200:
                status = _status_text(answer.status)
                raise _fail(_status_kind(answer.status), f"bootstrap {url}: {status}")
            body = answer.body
        try:
            bootstrap = Bootstrap.from_json(json.loads(body))
        except ValueError as exc:
            raise _fail(Kind.INVALID_ANSWER, f"bootstrap {url}: invalid JSON") from exc
        _bootstrap_cache[url] = (time.monotonic() + BOOTSTRAP_TTL_S, bootstrap)
        return bootstrap

    async def query(self, domain: str) -> RdapResult:
        """Ask the domain's registry; raise :class:`RegistryLookupError` on failure."""
        name = ascii_domain(domain)
        base = (await self.bootstrap()).base_url(name)
        if base is None:
            return RdapNoService(name.rsplit(".", 1)[-1])
        self._http.trust(base)
        answer = await self._get(urljoin(base, f"domain/{name}"), RDAP_MAX_BYTES)
        if answer.status == 404:
            return RdapNotFound(answer.url, answer.body.decode("utf-8", "replace"))
        if answer.status != 200:
            raise _fail(_status_kind(answer.status), _status_text(answer.status))
        return _answer(answer.url, answer.body)

    async def related(self, answer: RdapAnswer) -> RdapAnswer | None:
        """The registrar's record a registry links to (``rel: related``), or None.

        Best effort: thin registries (.com, .net) leave the registrant to the registrar, but
        the registry's answer is enough on its own, so a failure here is only logged.
        """
        url = _related_link(answer)
        if url is None:
            return None
        try:
            self._check_target(url, "link")
            related = await self._get(url, RDAP_MAX_BYTES)
            if related.status != 200:
                raise _fail(_status_kind(related.status), _status_text(related.status))
            return _answer(related.url, related.body)
        except RegistryLookupError as exc:
            log.info("registrar RDAP %s not used: %s", url, exc.message)
            return None

    async def _get(self, url: str, max_bytes: int) -> HttpAnswer:
        """GET with redirects followed by hand, each target checked first; the last answer
        (its ``url`` the one that answered), its body read only up to ``max_bytes``."""
        scheme = urlsplit(url).scheme
        for _ in range(MAX_REDIRECTS + 1):
            try:
                answer = await self._http.fetch(url, max_bytes=max_bytes)
            except FetchError as exc:
                raise _fail(exc.kind, exc.message) from exc
            if answer.status not in _REDIRECTS or not answer.location:
                return answer
            url = urljoin(url, answer.location)
            self._check_target(url, "redirect", scheme=scheme)
        raise _fail(Kind.INVALID_ANSWER, f"more than {MAX_REDIRECTS} redirects")

    def _check_target(self, url: str, what: str, *, scheme: str | None = None) -> None:
        """Refuse a URL an answer named unless it is HTTP(S) (on ``scheme`` when given) and on
        its scheme's default port or the bootstrap URL's."""
        parts = urlsplit(url)
        try:
            port = _port(parts)
        except ValueError:  # not a port number
            port = None
        known = parts.scheme in _DEFAULT_PORTS and parts.scheme == (scheme or parts.scheme)
        if (
            not known
            or port is None
            or port not in (_DEFAULT_PORTS[parts.scheme], self._bootstrap_port)
        ):
            raise _fail(Kind.INVALID_ANSWER, f"refusing to follow a {what} to {url}")


async def query_rdap(
    domain: str, settings: Settings, *, resolver: Resolver | None = None
) -> RdapResult:
    """One-shot :meth:`RdapClient.query`."""
    async with RdapClient(settings, resolver) as client:
        return await client.query(domain)


# --- helpers -------------------------------------------------------------------------------------


async def _read_file(url: str, settings: Settings) -> bytes:
    path = Path(url2pathname(urlsplit(url).path))

    def read() -> bytes:
        with path.open("rb") as f:
            return f.read(BOOTSTRAP_MAX_BYTES + 1)

    try:
        async with asyncio.timeout(settings.probe_timeout_s):
            body = await asyncio.to_thread(read)
    except OSError as exc:
        raise _fail(Kind.CONNECTION, f"bootstrap {url}: {exc.strerror or exc}") from exc
    except TimeoutError as exc:
        raise _fail(Kind.TIMEOUT, f"bootstrap {url}: {_timed_out(settings)}") from exc
    if len(body) > BOOTSTRAP_MAX_BYTES:
        raise _fail(
            Kind.TOO_LARGE, f"bootstrap {url}: larger than {size_text(BOOTSTRAP_MAX_BYTES)}"
        )
    return body


def _related_link(answer: RdapAnswer) -> str | None:
    self_url = answer.url.rstrip("/").lower()
    for link in answer.data.get("links") or ():
        if not isinstance(link, Mapping) or link.get("rel") != "related":
            continue
        href = link.get("href")
        if (
            isinstance(href, str)
            and "rdap" in str(link.get("type", "")).lower()
            and "/domain/" in href.lower()
            and href.rstrip("/").lower() != self_url
        ):
            return urljoin(answer.url, href)
    return None


def _answer(url: str, body: bytes) -> RdapAnswer:
    try:
        text = body.decode("utf-8")
        data = json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise _fail(Kind.INVALID_ANSWER, "the answer is not valid JSON") from exc
    if not isinstance(data, dict):
        raise _fail(Kind.INVALID_ANSWER, "the answer is not a JSON object")
    return RdapAnswer(url, data, text)


def _status_kind(status: int) -> str:
    return Kind.RATE_LIMITED if status == 429 else Kind.HTTP_STATUS


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _timed_out(settings: Settings) -> str:
    return f"timed out after {settings.probe_timeout_s:g} s"


def _port(url: SplitResult) -> int | None:
    """The port of a URL, explicit or its scheme's default; ValueError when not a number."""
    return url.port or _DEFAULT_PORTS.get(url.scheme)
