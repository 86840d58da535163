"""Messages through the Apprise library to a channel's Apprise URL, kept inside the guard.

Only URL schemes whose Apprise plugin talks HTTP(S) are accepted (``ALLOWED_SCHEMES``): JSON,
XML and form posts to a host of the user's choice, and chat and paging services. Schemes that
would send mail through an arbitrary server, write to syslog, use the desktop or run anything
local are refused when the channel is created, and again before every send.

Apprise's plugins connect with ``requests`` (urllib3) in the thread that calls ``notify``. That
thread is marked, and while it is, every connection urllib3 opens resolves its host with the
probes' resolver, drops non-public addresses (unless ``DSTRACK_ALLOW_PRIVATE_TARGETS=1``) and
connects to a checked address itself: no second resolution can swap in another address.
Connections of other threads are left as they are.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import urllib3.util.connection

from tracking.core.errors import ErrorCode, ValidationError
from tracking.core.settings import Settings
from tracking.probes.notify.errors import NotifyError
from tracking.probes.notify.http import checked_addresses
from tracking.probes.resolver import Resolver

# Schemes whose target host is the user's (checked at creation, and at every connection).
HOSTED_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})
# Services reached over HTTPS at the vendor's host (or a host in the URL, guarded the same way).
SERVICE_SCHEMES = frozenset(
    {
        "slack",
        "discord",
        "tgram",
        "pover",
        "pagerduty",
        "opsgenie",
        "ntfy",
        "ntfys",
        "gotify",
        "gotifys",
        "mmost",
        "mmosts",
        "rocket",
        "rockets",
        "matrix",
        "matrixs",
        "gchat",
        "workflow",
        "workflows",
        "zulip",
    }
)
ALLOWED_SCHEMES = HOSTED_SCHEMES | SERVICE_SCHEMES


@cache
def _apprise() -> Any:
    """The Apprise module, its plugins loaded once. One of them imports ``imghdr``, which
    Python 3.11 reports as deprecated: that warning is Apprise's business, not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        apprise.Apprise.instantiate("json://localhost")
    return apprise


def known_schemes() -> frozenset[str]:
    """Every URL scheme the installed Apprise has a plugin for."""
    manager: Any = _apprise().manager_plugins.NotificationManager()
    return frozenset(manager.schemas())


def scheme_of(url: str) -> str:
    return urlsplit(url).scheme.lower()


def check_apprise_url(url: str) -> str:
    """Refuses a scheme outside ``ALLOWED_SCHEMES`` or a URL Apprise cannot read."""
    scheme = scheme_of(url)
    if scheme not in ALLOWED_SCHEMES:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f'Apprise URLs with "{scheme or "(no scheme)"}://" are not accepted; use one of: '
            + ", ".join(f"{s}://" for s in sorted(ALLOWED_SCHEMES))
            + ".",
            field="url",
        )
    if _apprise().Apprise.instantiate(url) is None:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f"Apprise cannot read this {scheme}:// URL; check it against Apprise's documentation.",
            field="url",
        )
    return url


# --- the guard on urllib3's connections -----------------------------------------------------


@dataclass
class _ThreadGuard:
    resolve: Callable[[str], list[str]]
    refusal: str | None = None
    connected: list[str] = field(default_factory=list)


_local = threading.local()
_install_lock = threading.Lock()
_original: Any = None


def _install() -> None:
    global _original
    with _install_lock:
        if _original is None:
            _original = urllib3.util.connection.create_connection
            urllib3.util.connection.create_connection = _create_connection


def _create_connection(
    address: tuple[str, int],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: Any = None,
    socket_options: Any = None,
) -> socket.socket:
    guard: _ThreadGuard | None = getattr(_local, "guard", None)
    if guard is None:
        return _original(address, timeout, source_address, socket_options)  # type: ignore[no-any-return]
    host, port = address
    try:
        addresses = guard.resolve(host)
    except NotifyError as exc:
        guard.refusal = exc.message
        raise OSError(exc.message) from exc
    error: OSError | None = None
    for ip in addresses:
        try:
            sock = _original((ip, port), timeout, source_address, socket_options)
        except OSError as exc:
            error = exc
            continue
        guard.connected.append(ip)
        return sock  # type: ignore[no-any-return]
    raise error or OSError(f"no address for {host}")


def _notify_guarded(url: str, title: str, body: str, guard: _ThreadGuard) -> tuple[bool, str]:
    """In a worker thread: Apprise's notify with this thread's connections guarded."""
    _local.guard = guard
    try:
        apprise = _apprise()
        # async_mode off and no service timeout: the plugin runs in this very thread (a
        # deadline would hand it to an executor thread, out of the guard's sight).
        asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
        sender = apprise.Apprise(asset=asset)
        if not sender.add(url):
            return False, "Apprise cannot read the URL"
        result = sender.notify(body=body, title=title)
        entries = [e.asdict() for e in result.logs()]
        problems = [e["message"] for e in entries if e.get("level") in ("WARNING", "ERROR")]
        return bool(result), (problems[-1] if problems else "Apprise reported a failure")
    finally:
        _local.guard = None


async def send_apprise(
    url: str,
    *,
    title: str,
    body: str,
    settings: Settings,
    resolver: Resolver,
    timeout_s: float,
) -> None:
    """Send through Apprise; :class:`NotifyError` when it did not deliver."""
    try:
        check_apprise_url(url)
    except ValidationError as exc:
        raise NotifyError(exc.message, code=exc.code) from exc
    if scheme_of(url) in HOSTED_SCHEMES:  # a clear refusal before Apprise is involved
        await checked_addresses(
            urlsplit(url).hostname or "", resolver, settings.allow_private_targets
        )
    _install()

    def resolve(host: str) -> list[str]:
        return asyncio.run(checked_addresses(host, resolver, settings.allow_private_targets))

    guard = _ThreadGuard(resolve)
    try:
        async with asyncio.timeout(timeout_s):
            ok, reason = await asyncio.to_thread(_notify_guarded, url, title, body, guard)
    except TimeoutError as exc:
        raise NotifyError(f"no answer within {timeout_s:g} s") from exc
    if guard.refusal is not None:
        raise NotifyError(guard.refusal, code=ErrorCode.PRIVATE_ADDRESS_REFUSED)
    if not ok:
        raise NotifyError(reason)
