"""HTTP(S) fetches through the private-address guard, with one deadline and a size bound each.

The RDAP client uses it; so can anything else that fetches from a URL an answer or a user
named (OCSP responders, CRLs, webhooks). Host names are resolved with the probes' resolver and
every connection goes through :func:`tracking.probes.guard.connect_guarded`, to the address the
guard judged. Hosts from the operator's configuration are ``trusted``: the guard lets them reach
private addresses. Redirects are not followed (a caller that wants them checks each target).
No proxy from the environment is used: it would connect out of the guard's sight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from ssl import SSLContext
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.settings import Settings
from tracking.probes.guard import ConnectFailed, GuardPolicy, connect_guarded, describe
from tracking.probes.resolver import ResolutionError, Resolver, resolver_for


class FetchFailureKind:
    """Why a fetch failed (``FetchError.kind``); the same words as registry look-ups use."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    TOO_LARGE = "too_large"
    PRIVATE_ADDRESS = "private_address"


class FetchError(ProbeError):
    """No usable HTTP answer: ``kind`` says why, ``message`` says it for people."""

    def __init__(self, kind: str, message: str) -> None:
        refused = kind == FetchFailureKind.PRIVATE_ADDRESS
        super().__init__(
            ErrorCode.PRIVATE_ADDRESS_REFUSED if refused else ErrorCode.LOOKUP_FAILED, message
        )
        self.kind = kind


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP exchange: the status, the headers and the body (within the size bound)."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def location(self) -> str | None:
        """Where a redirect points (relative to ``url`` maybe), else None."""
        return self.headers.get("location") or None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, every TCP connection made by ``connect_guarded``."""

    def __init__(
        self, resolver: Resolver, policy: GuardPolicy, trusted: Iterable[str] = ()
    ) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolver = resolver
        self._policy = policy
        self._trusted: set[str] = set()
        for url in trusted:
            self.trust(url)

    def trust(self, url: str) -> None:
        """Let the host of ``url`` (or a bare host name) reach private addresses."""
        host = urlsplit(url).hostname if "://" in url else url
        self._trusted.add((host or "").lower().strip("[]"))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        async def connect(address: str, port: int) -> httpcore.AsyncNetworkStream:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                raise ConnectionError(describe(exc)) from exc

        trusted = host.lower().strip("[]") in self._trusted
        policy = self._policy.trusting() if trusted else self._policy
        connected = await connect_guarded(
            host, port, resolver=self._resolver, policy=policy, connect=connect
        )
        return connected.connection

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedHttpClient:
    """An ``httpx.AsyncClient`` on a :class:`GuardedBackend` (use with ``async with``)."""

    def __init__(
        self,
        settings: Settings,
        resolver: Resolver | None = None,
        *,
        trusted: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self._timeout_s = timeout_s or settings.probe_timeout_s
        policy = replace(GuardPolicy.of(settings), timeout_s=self._timeout_s)
        self.backend = GuardedBackend(resolver or resolver_for(settings), policy, trusted)
        context = _ssl_context()
        transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
        # httpx 0.28 has no public way to give its transport a network backend; the pool is
        # what AsyncHTTPTransport builds itself, plus ours.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=self.backend, keepalive_expiry=5.0
        )
        self._http = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(self._timeout_s),
            headers=dict(headers or {}),
            trust_env=False,
        )

    async def __aenter__(self) -> GuardedHttpClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    def trust(self, url: str) -> None:
        self.backend.trust(url)

    async def fetch(
        self,
        url: str,
        *,
        max_bytes: int,
        method: str = "GET",
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        cut: bool = False,
    ) -> HttpAnswer:
        """One exchange within the timeout; raise :class:`FetchError` on failure, including a
        body over ``max_bytes`` (declared or read), unless ``cut``: then only the first
        ``max_bytes`` are read and kept (for a caller that needs the status, not the body)."""
        host = urlsplit(url).netloc
        too_large = f"answer larger than {size_text(max_bytes)}"
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._http.stream(method, url, content=content, headers=headers) as response,
            ):
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes and not cut:
                    raise FetchError(FetchFailureKind.TOO_LARGE, too_large)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        if not cut:
                            raise FetchError(FetchFailureKind.TOO_LARGE, too_large)
                        del body[max_bytes:]
                        break
                return HttpAnswer(url, response.status_code, response.headers, bytes(body))
        except (TimeoutError, httpx.TimeoutException) as exc:
            message = f"timed out after {self._timeout_s:g} s"
            raise FetchError(FetchFailureKind.TIMEOUT, message) from exc
        except ConnectFailed as exc:
            raise _connect_failure(exc, host) from exc
        except ResolutionError as exc:
            message = f"cannot resolve {exc.host} ({exc.kind})"
            raise FetchError(FetchFailureKind.CONNECTION, message) from exc
        except httpx.ConnectError as exc:
            message = f"cannot connect to {host} ({describe(exc)})"
            raise FetchError(FetchFailureKind.CONNECTION, message) from exc
        except httpx.HTTPError as exc:
            raise FetchError(FetchFailureKind.CONNECTION, f"{host}: {describe(exc)}") from exc


def guarded_http_client(
    settings: Settings,
    resolver: Resolver | None = None,
    *,
    trusted: Iterable[str] = (),
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> GuardedHttpClient:
    """A client whose connections all pass the private-address guard (``trusted``: URLs or
    host names from the operator's configuration, which may be private). Each exchange, and
    each look-up and connect in it, is bounded by ``timeout_s`` (default ``probe_timeout_s``)."""
    return GuardedHttpClient(
        settings, resolver, trusted=trusted, headers=headers, timeout_s=timeout_s
    )


def _connect_failure(exc: ConnectFailed, host: str) -> FetchError:
    if exc.refused:
        return FetchError(
            FetchFailureKind.PRIVATE_ADDRESS,
            f"refused to connect to {exc.host}: it resolves to a loopback, private, "
            "link-local or reserved address",
        )
    return FetchError(FetchFailureKind.CONNECTION, f"cannot connect to {host} ({exc.detail})")


@cache
def _ssl_context() -> SSLContext:
    """httpx's default verification context, built once (loading the CA bundle is slow)."""
    return httpx.create_ssl_context(trust_env=False)


def size_text(n: int) -> str:
    """``2 MiB``, ``256 KiB``."""
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"
