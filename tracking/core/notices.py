"""What a notification says, pure: the e-mail subject and body, the webhook's JSON document,
and how a channel's target is checked and shown (secrets masked)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from tracking.core.alert_rules import days_left
from tracking.core.errors import ErrorCode, ValidationError
from tracking.core.ids import encode_id

SUBJECT_PREFIX = "[dstrack] "
MASK = "****"
MAX_RECIPIENTS = 20
MAX_URL_LENGTH = 2000


@dataclass(frozen=True)
class NoticeDevice:
    """The device an alert is about, as a notification shows it."""

    id: int
    name: str
    category: str
    organization_id: int
    organization_name: str
    host: str | None
    port: int | None
    domain: str | None
    expires_at: datetime | None  # validUntil of a certificate, expiresAt of a domain


@dataclass(frozen=True)
class Notice:
    """One alert, ready to be sent anywhere."""

    alert_id: int
    kind: str
    severity: str
    message: str
    threshold_days: int | None
    created_at: datetime
    device: NoticeDevice

    @property
    def subject(self) -> str:
        return SUBJECT_PREFIX + self.message

    def text(self, public_url: str) -> str:
        """The plain-text body of an e-mail (and of an Apprise message)."""
        device = self.device
        what = "Domain" if device.category == "DOMAIN" else "SSL certificate"
        lines = [
            self.message,
            "",
            f"Device: {device.name} ({what})",
            f"Organization: {device.organization_name}",
        ]
        if device.host:
            lines.append(f"Host: {device.host}:{device.port or 443}")
        if device.domain:
            lines.append(f"Domain: {device.domain}")
        if device.expires_at is not None:
            left = days_left(device.expires_at, self.created_at)
            lines.append(f"Expires: {device.expires_at:%Y-%m-%d %H:%M} UTC")
            lines.append(f"Days left: {left}" if left >= 0 else f"Expired {-left} days ago")
        lines += [
            f"Severity: {self.severity}",
            f"Alert: {self.kind}",
            "",
            f"Open in dstrack: {device_link(public_url, device.id)}",
        ]
        return "\n".join(lines) + "\n"

    def webhook_document(self) -> dict[str, Any]:
        """``{"type": "alert.raised", "alert": {...}, "device": {...}}``."""
        device = self.device
        is_domain = device.category == "DOMAIN"
        return {
            "type": "alert.raised",
            "alert": {
                "id": encode_id("Alert", self.alert_id),
                "kind": self.kind,
                "severity": self.severity,
                "message": self.message,
                "thresholdDays": self.threshold_days,
                "createdAt": _iso(self.created_at),
            },
            "device": {
                "id": encode_id("Device", device.id),
                "name": device.name,
                "category": device.category,
                "organization": {
                    "id": encode_id("Organization", device.organization_id),
                    "name": device.organization_name,
                },
                "host": device.host,
                "port": device.port,
                "domain": device.domain,
                "validUntil": None if is_domain else _iso(device.expires_at),
                "expiresAt": _iso(device.expires_at) if is_domain else None,
            },
        }


def device_link(public_url: str, device_id: int) -> str:
    return f"{public_url.rstrip('/')}/?device={encode_id('Device', device_id)}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def encode_document(document: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class TrialNotice:
    """What ``testNotificationChannel`` sends."""

    channel_name: str
    at: datetime

    @property
    def message(self) -> str:
        return f"Test message from dstrack for the channel {self.channel_name}."

    @property
    def subject(self) -> str:
        return SUBJECT_PREFIX + self.message

    def text(self, public_url: str) -> str:
        return (
            f"{self.message}\n\nAlerts of dstrack will arrive here like this one.\n"
            f"dstrack: {public_url}\n"
        )

    def webhook_document(self) -> dict[str, Any]:
        return {"type": "alert.test", "message": self.message, "createdAt": _iso(self.at)}


# --- targets ---------------------------------------------------------------------------------

# A practical e-mail address: local@domain.tld, no spaces, no display names, no quoting.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$"
)


def clean_recipients(addresses: Sequence[str] | None) -> list[str]:
    """E-mail recipients as given, checked one by one."""
    cleaned = [a.strip() for a in addresses or () if a.strip()]
    if not cleaned:
        raise ValidationError(
            ErrorCode.REQUIRED, "An e-mail channel needs at least one address.", field="emailTo"
        )
    if len(cleaned) > MAX_RECIPIENTS:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f"At most {MAX_RECIPIENTS} addresses per channel.",
            field="emailTo",
        )
    for address in cleaned:
        if len(address) > 254 or not _EMAIL.match(address) or ".." in address:
            raise ValidationError(
                ErrorCode.INVALID_INPUT,
                f'"{address[:100]}" is not an e-mail address.',
                field="emailTo",
            )
    return list(dict.fromkeys(cleaned))


def split_url(url: str | None, *, field: str = "url") -> SplitResult:
    """A URL that parses, with a scheme and a host, within a sane length."""
    text = (url or "").strip()
    if not text:
        raise ValidationError(ErrorCode.REQUIRED, "A URL is required.", field=field)
    if len(text) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in text):
        raise ValidationError(ErrorCode.INVALID_INPUT, "The URL is not valid.", field=field)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValidationError(
            ErrorCode.INVALID_INPUT, "The URL is not valid.", field=field
        ) from exc
    if not parts.scheme or not parts.netloc:
        raise ValidationError(
            ErrorCode.INVALID_INPUT, "The URL needs a scheme and a host.", field=field
        )
    return parts


def webhook_url(url: str | None) -> str:
    parts = split_url(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            "A webhook URL starts with http:// or https:// and names a host.",
            field="url",
        )
    return urlunsplit(parts)


def mask_url(url: str, *, keep_host: bool = True) -> str:
    """The URL with every secret-looking part replaced by ``****``: user and password, the path
    segments after the first (tokens of Slack, Teams, Discord...), the query values, and the
    host too unless ``keep_host`` (many Apprise URLs carry a token where a host would be)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if not keep_host:
        return f"{parts.scheme}://{MASK}" if parts.scheme else MASK
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    if parts.username:
        netloc = f"{MASK}@{netloc}"
    segments = parts.path.split("/")
    # "/first/..." keeps its first segment (a path people recognise); the rest may be tokens.
    shown = [s if i <= 1 or not s else MASK for i, s in enumerate(segments)]
    query = "&".join(
        f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else MASK
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, "/".join(shown), query, ""))


def mask_secret_value(text: str) -> str:
    """Anything that may hold a secret, in an error message: URLs are masked."""
    return re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", lambda m: mask_url(m.group(0)), text)
