"""One guarded HTTP POST for notifiers: the host resolved with the probes' resolver, every
address judged by the private-address guard, and the connection made to the checked address
only (no second resolution). Kept to :func:`post` so it can move onto the probes' shared
guarded HTTP client in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from functools import cache
from ssl import SSLContext
from typing import Any

import httpcore
import httpx

from tracking.core.errors import ErrorCode
from tracking.core.settings import Settings
from tracking.probes.guard import is_public_address
from tracking.probes.notify.errors import NotifyError, describe
from tracking.probes.resolver import ResolutionError, Resolver

MAX_ANSWER_BYTES = 64 * 1024


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, resolver: Resolver, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolver = resolver
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, self._resolver, self._allow_private)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise NotifyError(f"cannot connect to {host}:{port} ({describe(error or OSError())})")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def checked_addresses(host: str, resolver: Resolver, allow_private: bool) -> list[str]:
    """The addresses of ``host`` that may be connected to; refuses a host with none."""
    try:
        addresses = await resolver.resolve_addresses(host.strip("[]"))
    except ResolutionError as exc:
        raise NotifyError(f"cannot resolve {host} ({exc.kind})") from exc
    allowed = addresses if allow_private else [a for a in addresses if is_public_address(a)]
    if not allowed:
        raise NotifyError(
            f"refused to connect to {host}: it resolves to a loopback, private, link-local or "
            "reserved address",
            code=ErrorCode.PRIVATE_ADDRESS_REFUSED,
        )
    return allowed


@cache
def _ssl_context() -> SSLContext:
    return httpx.create_ssl_context(trust_env=False)


async def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    settings: Settings,
    resolver: Resolver,
    timeout_s: float,
) -> int:
    """POST ``body`` to ``url``; the HTTP status. Redirects are not followed (a redirect is
    not a delivery). Raises :class:`NotifyError` when no answer came."""
    context = _ssl_context()
    transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
    # httpx 0.28 has no public way to give its transport a network backend.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        network_backend=_GuardedBackend(resolver, settings.allow_private_targets),
    )
    try:
        async with (
            asyncio.timeout(timeout_s),
            httpx.AsyncClient(
                transport=transport, follow_redirects=False, trust_env=False, timeout=timeout_s
            ) as client,
            client.stream("POST", url, content=body, headers=dict(headers)) as response,
        ):
            read = 0
            async for chunk in response.aiter_bytes():
                read += len(chunk)
                if read > MAX_ANSWER_BYTES:
                    break
            return response.status_code
    except TimeoutError as exc:
        raise NotifyError(f"no answer within {timeout_s:g} s") from exc
    except httpx.TimeoutException as exc:
        raise NotifyError(f"no answer within {timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, NotifyError):
            raise cause from exc
        raise NotifyError(describe(exc)) from exc
