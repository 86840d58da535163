"""Errors the domain reports to users, each with a stable code and a message.

The codes and messages (README: "Validation errors") are stable: clients match on them.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_URI_FORMAT = "INVALID_URI_FORMAT"
    HTTP_WEB_REQUEST_ERROR = "HTTP_WEB_REQUEST_ERROR"
    CERTIFICATE_NOT_FOUND = "CERTIFICATE_NOT_FOUND"
    SSL_DETAILS_UNAVAILABLE = "SSL_DETAILS_UNAVAILABLE"
    INVALID_PEM = "INVALID_PEM"
    CATEGORY_LOCKED = "CATEGORY_LOCKED"
    TRACKING_DISABLED = "TRACKING_DISABLED"
    PRIVATE_ADDRESS_REFUSED = "PRIVATE_ADDRESS_REFUSED"
    INVALID_DOMAIN = "INVALID_DOMAIN"
    INVALID_INPUT = "INVALID_INPUT"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    CONTRACT_ORGANIZATION_MISMATCH = "CONTRACT_ORGANIZATION_MISMATCH"
    DUPLICATE_NAME = "DUPLICATE_NAME"
    LOOKUP_FAILED = "LOOKUP_FAILED"
    DNS_LOOKUP_FAILED = "DNS_LOOKUP_FAILED"
    SAVE_FAILED = "SAVE_FAILED"
    UPDATE_FAILED = "UPDATE_FAILED"
    RATE_LIMITED = "RATE_LIMITED"
    NOTIFICATION_FAILED = "NOTIFICATION_FAILED"


MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.INVALID_URI_FORMAT: (
        "Please double-check your input and try again (Invalid URI Format)"
    ),
    ErrorCode.HTTP_WEB_REQUEST_ERROR: (
        "Please double check your input and try again (HttpWebRequest error)"
    ),
    ErrorCode.CERTIFICATE_NOT_FOUND: (
        "SSL Certificate not found. Please check spelling and try again."
    ),
    ErrorCode.SSL_DETAILS_UNAVAILABLE: "Unable to retrieve SSL Details",
    ErrorCode.INVALID_PEM: (
        "Unable to process PEM-encoded certificate. Please double-check certificate and try again."
    ),
    ErrorCode.CATEGORY_LOCKED: (
        "The category of a Domain or SSL Certificate device cannot be changed, "
        "and no other device can be turned into one."
    ),
    ErrorCode.TRACKING_DISABLED: (
        "Domain & SSL Tracking is disabled: automated retrieval of WHOIS information, "
        "DNS records and SSL certificates is not available."
    ),
    ErrorCode.PRIVATE_ADDRESS_REFUSED: (
        "The target resolves to a loopback, private, link-local or reserved address; "
        "dstrack does not connect to such addresses."
    ),
}


class DstrackError(Exception):
    """A failure a user can act on: a stable code, a message, and the input field concerned."""

    def __init__(self, code: ErrorCode, message: str | None = None, *, field: str | None = None):
        self.code = code
        self.message = message if message is not None else MESSAGES.get(code, code.value)
        self.field = field
        super().__init__(self.message)


class ValidationError(DstrackError):
    """The input is not acceptable; nothing was saved."""


class ProbeError(DstrackError):
    """A network look-up failed (host unreachable, no certificate, timeout, refused address)."""


def not_found(field: str, what: str) -> ValidationError:
    """Forbidden and missing look the same to the caller, so IDs cannot be probed."""
    return ValidationError(ErrorCode.NOT_FOUND, f"{what} not found.", field=field)


def forbidden(message: str) -> ValidationError:
    return ValidationError(ErrorCode.FORBIDDEN, message)
