"""WHOIS look-ups (RFC 3912): one TCP exchange on port 43, read until the server closes.

The server is ``settings.whois_server`` when configured (operator's choice, not guarded);
otherwise IANA's referral for the TLD (``whois.iana.org`` -> ``refer:``), cached per TLD. For
thin registries the registry's answer names the registrar's server, which holds the
registrant; that one referral is followed, best effort, and only without an override (the
configured server is meant to answer every query). Names are resolved with the probes'
resolver (``DSTRACK_DNS_NAMESERVERS``) and connected to through the private-address guard
(:func:`tracking.probes.guard.connect_guarded`); servers named by answers (IANA's referral, the
registrar) must be public unless ``allow_private_targets`` is set.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass

from tracking.core.registration import LookupFailureKind as Kind
from tracking.core.registration import RegistryLookupError, ascii_domain
from tracking.core.settings import Settings
from tracking.core.whois_text import is_whois_not_found
from tracking.probes.guard import ConnectFailed, GuardPolicy, connect_guarded
from tracking.probes.resolver import ResolutionError, Resolver, resolver_for

log = logging.getLogger(__name__)

WHOIS_PORT = 43
IANA_WHOIS_SERVER = "whois.iana.org"
WHOIS_MAX_BYTES = 256 * 1024
REFERRAL_TTL_S = 24 * 3600.0
# Registries whose port-43 answers leave the registrant to the registrar (Verisign's).
THIN_TLDS = frozenset({"com", "net", "cc", "tv", "jobs", "name"})

AddressBook = Mapping[str, tuple[str, int]]
"""Test seam: host name -> (address, port) used instead of DNS and port 43."""

_REFER = re.compile(r"^\s*(?:refer|whois)\s*:\s*(\S+)\s*$", re.IGNORECASE | re.M)
_REGISTRAR_SERVER = re.compile(r"^\s*Registrar WHOIS Server\s*:\s*(\S+)\s*$", re.IGNORECASE | re.M)


@dataclass(frozen=True)
class WhoisAnswer:
    """The registry's answer, and the registrar's when a thin registry referred to it."""

    server: str
    text: str
    registrar_server: str | None = None
    registrar_text: str | None = None


def _fail(kind: str, message: str) -> RegistryLookupError:
    return RegistryLookupError("WHOIS", kind, message)


_referral_cache: dict[tuple[str, str], tuple[float, str]] = {}


def clear_referral_cache() -> None:
    _referral_cache.clear()


@dataclass(frozen=True)
class _Context:
    settings: Settings
    resolver: Resolver
    book: AddressBook


async def query_whois(
    domain: str,
    settings: Settings,
    *,
    resolver: Resolver | None = None,
    address_book: AddressBook | None = None,
) -> WhoisAnswer:
    """Ask the registry's WHOIS server; raise :class:`RegistryLookupError` on failure.

    An answer saying "not registered" is returned like any other: telling it apart is
    :func:`tracking.core.whois_text.is_whois_not_found`'s job.
    """
    name = ascii_domain(domain)
    ctx = _Context(settings, resolver or resolver_for(settings), address_book or {})
    if settings.whois_server is not None:
        host, port = settings.whois_server
        text = await whois_exchange(host, port, name, ctx.settings, ctx.resolver, guard=False)
        return WhoisAnswer(f"{host}:{port}", text)

    host = await _registry_server(name.rsplit(".", 1)[-1], ctx)
    text = await _query_named(host, name + _QUERY_SUFFIXES.get(host, ""), ctx)
    answer = WhoisAnswer(host, text)
    if name.rsplit(".", 1)[-1] in THIN_TLDS and not is_whois_not_found(text):
        answer = await _with_registrar(answer, name, ctx)
    return answer


# What a registry needs after the name: JPRS answers in Japanese (ISO-2022-JP) unless asked for
# English. Only when the registry was found by referral: a configured server (a proxy, a test
# double) gets the name alone.
_QUERY_SUFFIXES = {"whois.jprs.jp": "/e"}


async def _registry_server(tld: str, ctx: _Context) -> str:
    key = (IANA_WHOIS_SERVER, tld)
    cached = _referral_cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    text = await _query_named(IANA_WHOIS_SERVER, tld, ctx)
    match = _REFER.search(text)
    if match is None:
        raise _fail(Kind.NO_SERVER, f"IANA names no WHOIS server for .{tld}")
    server = _server_name(match.group(1))
    _referral_cache[key] = (time.monotonic() + REFERRAL_TTL_S, server)
    return server


async def _with_registrar(answer: WhoisAnswer, name: str, ctx: _Context) -> WhoisAnswer:
    match = _REGISTRAR_SERVER.search(answer.text)
    if match is None:
        return answer
    server = _server_name(match.group(1))
    if not server or server == answer.server.lower():
        return answer
    try:
        text = await _query_named(server, name, ctx)
    except RegistryLookupError as exc:
        log.info("registrar WHOIS %s not used: %s", server, exc.message)
        return answer
    if is_whois_not_found(text):
        return answer
    return WhoisAnswer(answer.server, answer.text, server, text)


def _server_name(value: str) -> str:
    """``whois://x/``, ``http://x``, ``x`` -> ``x`` (registrars write all of these)."""
    value = re.sub(r"^[a-z]+://", "", value.strip(), flags=re.IGNORECASE)
    return value.split("/", 1)[0].rstrip(".").lower()


async def _query_named(host: str, query: str, ctx: _Context) -> str:
    address, port = ctx.book.get(host, (host, WHOIS_PORT))
    return await whois_exchange(
        address, port, query, ctx.settings, ctx.resolver, guard=True, label=host
    )


async def whois_exchange(
    host: str,
    port: int,
    query: str,
    settings: Settings,
    resolver: Resolver,
    *,
    guard: bool,
    label: str | None = None,
) -> str:
    """Send one query line and read the answer until EOF, within the deadline and size cap.

    ``guard``: the server was named by an answer (IANA's referral, a registry's), not by the
    operator, so it must be public unless ``allow_private_targets``.
    """
    label = label or f"{host}:{port}"
    policy = GuardPolicy.of(settings)
    try:
        async with asyncio.timeout(settings.probe_timeout_s):
            connected = await connect_guarded(
                host,
                port,
                resolver=resolver,
                policy=policy if guard else policy.trusting(),
                connect=asyncio.open_connection,
            )
            reader, writer = connected.connection
            try:
                writer.write(query.encode("ascii", "replace") + b"\r\n")
                await writer.drain()
                data = bytearray()
                while chunk := await reader.read(65536):
                    data += chunk
                    if len(data) > WHOIS_MAX_BYTES:
                        raise _fail(
                            Kind.TOO_LARGE,
                            f"answer of {label} larger than {WHOIS_MAX_BYTES // 1024} KiB",
                        )
            finally:
                writer.close()
                with suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError as exc:
        raise _fail(Kind.TIMEOUT, _timed_out(settings)) from exc
    except ResolutionError as exc:
        raise _fail(Kind.CONNECTION, f"cannot resolve {host} ({exc.kind})") from exc
    except ConnectFailed as exc:
        raise _connect_failure(exc, label, settings) from exc
    except OSError as exc:
        raise _fail(Kind.CONNECTION, f"cannot reach {label} ({exc.strerror or exc})") from exc
    text = _decode(bytes(data))
    if not text.strip():
        raise _fail(Kind.EMPTY_ANSWER, f"empty answer from {label}")
    return text


def _connect_failure(exc: ConnectFailed, label: str, settings: Settings) -> RegistryLookupError:
    """Why no address of the server could be connected to, in the words of the last failure."""
    if exc.refused:
        return _fail(
            Kind.PRIVATE_ADDRESS,
            f"refused to connect to {exc.host}: it resolves to a loopback, private, "
            "link-local or reserved address",
        )
    cause = exc.__cause__
    if isinstance(cause, TimeoutError):
        return _fail(Kind.TIMEOUT, _timed_out(settings))
    if isinstance(cause, ConnectionRefusedError) and len(exc.attempts) == 1:
        return _fail(Kind.CONNECTION, f"connection refused by {label}")
    return _fail(Kind.CONNECTION, f"cannot reach {label} ({exc.detail})")


def _timed_out(settings: Settings) -> str:
    return f"timed out after {settings.probe_timeout_s:g} s"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # older ccTLD servers; never fails
