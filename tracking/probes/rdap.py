"""RDAP look-ups (RFC 9082/9083) with the IANA bootstrap (RFC 9224, formerly RFC 7484).

Each HTTP exchange has one deadline (``probe_timeout_s``) and a body size cap. Host names are
resolved with the probes' resolver (``DSTRACK_DNS_NAMESERVERS``), and connections go to the
resolved addresses checked by the private-address guard, so a DNS answer cannot swap in
another address between check and connect. The bootstrap server and the RDAP base URL it
names come from the operator's configuration and IANA: their hosts are trusted. Any other
host (a redirect target, a registrar link) comes from an answer and must be public unless
``allow_private_targets`` is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from pathlib import Path
from ssl import SSLContext
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import httpcore
import httpx

from tracking.core.registration import LookupFailureKind as Kind
from tracking.core.registration import RegistryLookupError, ascii_domain
from tracking.core.settings import Settings
from tracking.probes.guard import is_public_address
from tracking.probes.resolver import ResolutionError, Resolver, resolver_for

log = logging.getLogger(__name__)

RDAP_MAX_BYTES = 2 * 1024 * 1024
BOOTSTRAP_MAX_BYTES = 4 * 1024 * 1024
BOOTSTRAP_TTL_S = 24 * 3600.0
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HEADERS = {"Accept": "application/rdap+json, application/json;q=0.9", "User-Agent": "dstrack"}


@dataclass(frozen=True)
class RdapAnswer:
    """A domain object: the URL that answered (after redirects), the JSON and the body as sent."""

    url: str
    data: Mapping[str, Any]
    text: str


@dataclass(frozen=True)
class RdapNotFound:
    """The registry's RDAP service answered 404: the domain is not registered."""

    url: str


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
        self._backend = _GuardedBackend(
            resolver or resolver_for(settings), settings.allow_private_targets
        )
        context = _ssl_context()
        transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
        # httpx 0.28 has no public way to give its transport a network backend; the pool is
        # what AsyncHTTPTransport builds itself, plus ours.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=self._backend, keepalive_expiry=5.0
        )
        # trust_env=False: a proxy from the environment would connect out of the guard's sight.
        self._http = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,  # followed by hand, each target through the guard
            timeout=httpx.Timeout(settings.probe_timeout_s),
            headers=_HEADERS,
            trust_env=False,
        )

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
            self._backend.trust(url)
            status, _, body = await self._get(url, BOOTSTRAP_MAX_BYTES)
            if status != 200:
                raise _fail(_status_kind(status), f"bootstrap {url}: {_status_text(status)}")
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
        self._backend.trust(base)
        status, final_url, body = await self._get(urljoin(base, f"domain/{name}"), RDAP_MAX_BYTES)
        if status == 404:
            return RdapNotFound(final_url)
        if status != 200:
            raise _fail(_status_kind(status), _status_text(status))
        return _answer(final_url, body)

    async def related(self, answer: RdapAnswer) -> RdapAnswer | None:
        """The registrar's record a registry links to (``rel: related``), or None.

        Best effort: thin registries (.com, .net) leave the registrant to the registrar, but
        the registry's answer is enough on its own, so a failure here is only logged.
        """
        url = _related_link(answer)
        if url is None:
            return None
        try:
            status, final_url, body = await self._get(url, RDAP_MAX_BYTES)
            if status != 200:
                raise _fail(_status_kind(status), _status_text(status))
            return _answer(final_url, body)
        except RegistryLookupError as exc:
            log.info("registrar RDAP %s not used: %s", url, exc.message)
            return None

    async def _get(self, url: str, max_bytes: int) -> tuple[int, str, bytes]:
        """GET with redirects followed by hand: ``(status, final URL, body)``; body only for 200."""
        for _ in range(MAX_REDIRECTS + 1):
            if urlsplit(url).scheme not in ("http", "https"):
                raise _fail(Kind.INVALID_ANSWER, f"refusing to follow a redirect to {url}")
            status, location, body = await self._exchange(url, max_bytes)
            if status in _REDIRECTS and location:
                url = urljoin(url, location)
                continue
            return status, url, body
        raise _fail(Kind.INVALID_ANSWER, f"more than {MAX_REDIRECTS} redirects")

    async def _exchange(self, url: str, max_bytes: int) -> tuple[int, str | None, bytes]:
        host = urlsplit(url).netloc
        too_large = f"answer larger than {_size(max_bytes)}"
        try:
            async with (
                asyncio.timeout(self._settings.probe_timeout_s),
                self._http.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    return response.status_code, response.headers.get("location"), b""
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise _fail(Kind.TOO_LARGE, too_large)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise _fail(Kind.TOO_LARGE, too_large)
                return 200, None, bytes(body)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise _fail(Kind.TIMEOUT, _timed_out(self._settings)) from exc
        except httpx.ConnectError as exc:
            raise _fail(Kind.CONNECTION, f"cannot connect to {host} ({_reason(exc)})") from exc
        except httpx.HTTPError as exc:
            raise _fail(Kind.CONNECTION, f"{host}: {_reason(exc)}") from exc


async def query_rdap(
    domain: str, settings: Settings, *, resolver: Resolver | None = None
) -> RdapResult:
    """One-shot :meth:`RdapClient.query`."""
    async with RdapClient(settings, resolver) as client:
        return await client.query(domain)


@cache
def _ssl_context() -> SSLContext:
    """httpx's default verification context, built once (loading the CA bundle is slow)."""
    return httpx.create_ssl_context(trust_env=False)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves with the probes' resolver and connects only to addresses the guard accepts."""

    def __init__(self, resolver: Resolver, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolver = resolver
        self._allow_private = allow_private
        self._trusted: set[str] = set()

    def trust(self, url: str) -> None:
        """Hosts from the operator's configuration (and IANA's bootstrap) are not guarded."""
        self._trusted.add((urlsplit(url).hostname or "").lower())

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._resolver.resolve_addresses(host)
        except ResolutionError as exc:
            raise _fail(Kind.CONNECTION, f"cannot resolve {host} ({exc.kind})") from exc
        if not (self._allow_private or host.lower() in self._trusted):
            addresses = [a for a in addresses if is_public_address(a)]
            if not addresses:
                raise _fail(
                    Kind.PRIVATE_ADDRESS,
                    f"refused to connect to {host}: it resolves to a loopback, private, "
                    "link-local or reserved address",
                )
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error if error is not None else _fail(Kind.CONNECTION, f"no address for {host}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


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
        raise _fail(Kind.TOO_LARGE, f"bootstrap {url}: larger than {_size(BOOTSTRAP_MAX_BYTES)}")
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


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
