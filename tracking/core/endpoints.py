"""The addresses a host's certificate was checked at: what each served, stored and compared.

A host source is checked at the one address that answered, or, with "check all addresses",
at each of its A and AAAA addresses. Each is an :class:`Endpoint`: the certificate it served
(leaf fingerprint and expiry) and the handshake's TLS version and cipher, or why none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_ADDRESSES = 16  # at most this many addresses of one host are checked


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    fingerprint_sha256: str | None = None  # of the leaf; None when the address failed
    valid_until: datetime | None = None
    tls_version: str | None = None
    cipher: str | None = None
    error: str | None = None  # why no certificate was retrieved there

    def stored(self) -> dict[str, Any]:
        """As a JSON object (the datetime in ISO 8601, UTC)."""
        until = self.valid_until
        return {
            "address": self.address,
            "port": self.port,
            "fingerprint_sha256": self.fingerprint_sha256,
            "valid_until": None if until is None else until.astimezone(UTC).isoformat(),
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "error": self.error,
        }

    @classmethod
    def from_stored(cls, value: Mapping[str, Any]) -> Endpoint:
        until = value.get("valid_until")
        return cls(
            address=str(value["address"]),
            port=int(value["port"]),
            fingerprint_sha256=value.get("fingerprint_sha256"),
            valid_until=datetime.fromisoformat(until) if until else None,
            tls_version=value.get("tls_version"),
            cipher=value.get("cipher"),
            error=value.get("error"),
        )


def stored_endpoints(endpoints: Iterable[Endpoint]) -> list[dict[str, Any]]:
    return [endpoint.stored() for endpoint in endpoints]


def endpoints_from_stored(values: Iterable[Mapping[str, Any]] | None) -> tuple[Endpoint, ...]:
    return tuple(Endpoint.from_stored(value) for value in values or ())


def disagree(endpoints: Iterable[Endpoint]) -> bool:
    """True when two endpoints serve different leaf certificates."""
    return len({e.fingerprint_sha256 for e in endpoints if e.fingerprint_sha256}) > 1


def disagreement(endpoints: Sequence[Endpoint]) -> str | None:
    """Which addresses serve which leaf, when they differ, for the Activity note:
    ``127.0.0.2 serve(s) AB:CD:EF:01…; 127.0.0.3 serve(s) 12:34:56:78…``."""
    if not disagree(endpoints):
        return None
    served: dict[str, list[str]] = {}
    for endpoint in endpoints:
        if endpoint.fingerprint_sha256:
            served.setdefault(endpoint.fingerprint_sha256, []).append(endpoint.address)
    groups = "; ".join(
        f"{', '.join(addresses)} {'serves' if len(addresses) == 1 else 'serve'} {fingerprint[:11]}…"
        for fingerprint, addresses in served.items()
    )
    return f"The addresses serve different certificates (SHA-256): {groups}."
