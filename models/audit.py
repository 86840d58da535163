"""What dstrack learned about a device: current details, the update job, Activity and RAW files."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import JSONList, UTCDateTime


class SslDetailsRecord(SQLModel, table=True):
    """The current SSL Details of an SSL Certificate device (one row per device)."""

    __tablename__ = "ssl_details"

    device_id: int = Field(foreign_key="devices.id", primary_key=True)
    common_name: str | None = None
    valid_from: datetime = Field(sa_type=UTCDateTime)
    valid_until: datetime = Field(sa_type=UTCDateTime)
    issued_by: str | None = None
    organization: str | None = None
    organizational_unit: str | None = None
    location: str | None = None
    serial_number: str
    signature_algorithm: str
    subject_alternative_names: list[str] = Field(default_factory=list, sa_type=JSONList)
    fingerprint_sha256: str
    # Beyond the reference: the subject public key (tracking.core.ssl_details.SslDetails).
    key_type: str = Field(max_length=32)
    key_size: int
    # Beyond the reference: the chain as served, and the verdicts on it.
    chain_pem: str = Field(sa_type=sa.Text)
    chain_length: int = 1
    trusted: bool = False
    trust_error: str | None = None
    hostname_matches: bool | None = None  # None for PEM sources: there is no host to match
    address: str | None = None
    protocol: str | None = None  # the negotiated TLS version ("TLSv1.3"), hosts only
    retrieved_at: datetime = Field(sa_type=UTCDateTime)
    # The handshake's cipher, and every address checked (tracking.core.endpoints): the one
    # used, or each A/AAAA address with "check all addresses"; [] for a PEM source.
    cipher: str | None = None
    endpoints: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONList)
    # Revocation (OCSP or CRL): GOOD, REVOKED, UNKNOWN or UNAVAILABLE, when it was asked, and
    # when and why the certificate was revoked.
    revocation_status: str = Field(
        default="UNAVAILABLE", max_length=12, sa_column_kwargs={"server_default": "UNAVAILABLE"}
    )
    revocation_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revocation_reason: str | None = Field(default=None, max_length=32)


class DomainDetailsRecord(SQLModel, table=True):
    """The current registration details and DNS records of a Domain device."""

    __tablename__ = "domain_details"

    device_id: int = Field(foreign_key="devices.id", primary_key=True)
    registrar: str | None = None
    registrant_organization: str | None = None
    created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    name_servers: list[str] = Field(default_factory=list, sa_type=JSONList)
    statuses: list[str] = Field(default_factory=list, sa_type=JSONList)
    dnssec: bool | None = None
    source: str = Field(max_length=8)
    dns_records: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONList)
    registered: bool | None = None  # False: the registry says the domain does not exist
    registration_error: str | None = Field(default=None, sa_type=sa.Text)
    dns_error: str | None = Field(default=None, sa_type=sa.Text)
    retrieved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UpdateJob(SQLModel, table=True):
    """An auto-updating job: exists exactly while the device is refreshed on a schedule."""

    __tablename__ = "update_jobs"
    # The due-device query (``tracking.refresh.jobs``) walks this index in its order - due time,
    # then device - and reads the claim from it too, so it never visits the table's rows to skip
    # jobs held by runs: a batch costs the same with 10k or 1M jobs (benchmarks/selection.py).
    __table_args__ = (sa.Index("ix_update_jobs_due", "due_at", "device_id", "claimed_until"),)

    device_id: int = Field(foreign_key="devices.id", primary_key=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    interval_seconds: int
    reason: str
    # Set while a refresh run holds the job, so the same device is never in two runs at once.
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ActivityNote(SQLModel, table=True):
    __tablename__ = "activity_notes"
    __table_args__ = (sa.Index("ix_activity_notes_device_created", "device_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="devices.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    author: str = Field(max_length=200)
    text: str = Field(sa_type=sa.Text)


class RawFile(SQLModel, table=True):
    """A RAW snapshot; its content is stored content-addressed (by sha256) under the data dir."""

    __tablename__ = "raw_files"
    __table_args__ = (sa.Index("ix_raw_files_device_created", "device_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="devices.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    file_name: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size_bytes: int
    sha256: str = Field(max_length=64, index=True)


class AppSetting(SQLModel, table=True):
    """Service-wide switches, e.g. whether Domain & SSL Tracking is enabled."""

    __tablename__ = "app_settings"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=1000)
