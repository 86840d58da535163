"""How notifications are sent: the SMTP server, the sender, the public URL of links, and the
time one delivery may take (``DSTRACK_SMTP_URL``, ``DSTRACK_MAIL_FROM``, ``DSTRACK_PUBLIC_URL``,
``DSTRACK_NOTIFY_TIMEOUT_S``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_MAIL_FROM = "dstrack@localhost"


@dataclass(frozen=True)
class NotifySettings:
    smtp_url: str | None = None  # smtp://[user:pass@]host:port or smtps://...
    mail_from: str = DEFAULT_MAIL_FROM
    public_url: str = DEFAULT_PUBLIC_URL
    timeout_s: float = 20.0  # one delivery (connect, send, answer), each channel on its own

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotifySettings:
        env = os.environ if environ is None else environ
        return cls(
            smtp_url=env.get("DSTRACK_SMTP_URL") or None,
            mail_from=env.get("DSTRACK_MAIL_FROM") or DEFAULT_MAIL_FROM,
            public_url=(env.get("DSTRACK_PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/"),
            timeout_s=float(env.get("DSTRACK_NOTIFY_TIMEOUT_S") or 20),
        )

    @property
    def lease_s(self) -> float:
        """How long a delivery worker holds a claimed delivery: longer than one attempt can
        take, so a live worker is never overtaken; a killed one's deliveries come back then."""
        return 2 * self.timeout_s + 5
