"""Notifiers' HTTP: one POST through the probes' guarded HTTP client, and the target check.

Both go through the private-address guard (``tracking.probes.guard``): the host is resolved with
the probes' resolver, every address judged, and the connection made to a checked address only
(no second resolution). Redirects are not followed: a redirect is not a delivery.
"""

from __future__ import annotations

from collections.abc import Mapping

from tracking.core.errors import ErrorCode
from tracking.core.settings import Settings
from tracking.probes.guard import ConnectFailed, GuardPolicy, judged_addresses
from tracking.probes.httpclient import FetchError, FetchFailureKind, guarded_http_client
from tracking.probes.notify.errors import NotifyError
from tracking.probes.resolver import ResolutionError, Resolver

MAX_ANSWER_BYTES = 64 * 1024
CHECK_TIMEOUT_S = 10.0


async def checked_addresses(
    host: str, resolver: Resolver, allow_private: bool, *, timeout_s: float = CHECK_TIMEOUT_S
) -> list[str]:
    """The addresses of ``host`` that may be connected to; refuses a host with none."""
    policy = GuardPolicy(allow_private, timeout_s)
    try:
        return await judged_addresses(host.strip("[]"), resolver=resolver, policy=policy)
    except ResolutionError as exc:
        raise NotifyError(f"cannot resolve {host} ({exc.kind})") from exc
    except ConnectFailed as exc:
        raise NotifyError(_refused(host), code=ErrorCode.PRIVATE_ADDRESS_REFUSED) from exc


async def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    settings: Settings,
    resolver: Resolver,
    timeout_s: float,
) -> int:
    """POST ``body`` to ``url``; the HTTP status (the answer's body is read up to 64 KiB and
    dropped). Raises :class:`NotifyError` when no answer came."""
    try:
        async with guarded_http_client(settings, resolver, timeout_s=timeout_s) as client:
            answer = await client.fetch(
                url,
                method="POST",
                content=body,
                headers=headers,
                max_bytes=MAX_ANSWER_BYTES,
                cut=True,
            )
    except FetchError as exc:
        if exc.kind == FetchFailureKind.TIMEOUT:
            raise NotifyError(f"no answer within {timeout_s:g} s") from exc
        raise NotifyError(exc.message, code=exc.code) from exc
    return answer.status


def _refused(host: str) -> str:
    return (
        f"refused to connect to {host}: it resolves to a loopback, private, link-local or "
        "reserved address"
    )
