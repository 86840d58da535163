"""Enumerations stored as plain strings (portable across SQLite and PostgreSQL)."""

from enum import StrEnum


class OrganizationType(StrEnum):
    CUSTOMER = "CUSTOMER"
    LEAD = "LEAD"
    PROSPECT = "PROSPECT"
    VENDOR = "VENDOR"
    PARTNER = "PARTNER"


class DeviceCategory(StrEnum):
    STANDARD = "STANDARD"
    DOMAIN = "DOMAIN"
    SSL_CERTIFICATE = "SSL_CERTIFICATE"


class SslSourceKind(StrEnum):
    PEM = "PEM"
    HOST = "HOST"
