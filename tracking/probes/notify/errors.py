"""The one error a notifier raises: why a message was not delivered, without secrets."""

from __future__ import annotations

from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.notices import mask_secret_value

MAX_REASON = 500


class NotifyError(ProbeError):
    """A notification was not delivered; ``message`` says why (secrets masked)."""

    def __init__(self, reason: str, *, code: ErrorCode = ErrorCode.LOOKUP_FAILED) -> None:
        super().__init__(code, mask_secret_value(reason)[:MAX_REASON])


def describe(exc: BaseException) -> str:
    """An exception as one short line, its type when it says nothing."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
