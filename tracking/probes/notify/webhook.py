"""Webhooks signed per Standard Webhooks: ``webhook-id`` (the delivery's idempotency key, the
same on every retry), ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64
HMAC-SHA256 of "id.timestamp.body">`` with the channel's ``whsec_`` secret)."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook

from tracking.core.errors import ErrorCode, ValidationError
from tracking.core.settings import Settings
from tracking.probes.notify import http
from tracking.probes.notify.errors import NotifyError
from tracking.probes.resolver import Resolver

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str:
    """A ``whsec_<base64>`` secret of at least 16 bytes."""
    text = secret.strip()
    body = text.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(body + "==", validate=True)
    except ValueError as exc:
        raise _bad_secret() from exc
    if not text.startswith(SECRET_PREFIX) or len(key) < 16 or len(key) > 128:
        raise _bad_secret()
    return text


def _bad_secret() -> ValidationError:
    return ValidationError(
        ErrorCode.INVALID_INPUT,
        'A webhook secret is "whsec_" followed by 16 to 128 bytes in base64.',
        field="secret",
    )


def signed_headers(secret: str, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body)
    return {
        "content-type": "application/json",
        "user-agent": "dstrack",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


async def send_webhook(
    url: str,
    secret: str,
    message_id: str,
    body: bytes,
    *,
    at: datetime,
    settings: Settings,
    resolver: Resolver,
    timeout_s: float,
) -> None:
    """POST the signed body; a 2xx answer is a delivery, anything else a :class:`NotifyError`."""
    headers = signed_headers(secret, message_id, at, body)
    status = await http.post(
        url, body, headers, settings=settings, resolver=resolver, timeout_s=timeout_s
    )
    if not 200 <= status < 300:
        raise NotifyError(f"the webhook answered HTTP {status}")
