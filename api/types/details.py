"""GraphQL types of what a device's audit holds: SSL Details, domain details, the schedule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import strawberry

from models import DomainDetailsRecord, SslDetailsRecord, UpdateJob
from tracking.core.endpoints import Endpoint
from tracking.core.revocation import RevocationStatus as RevocationStatusEnum
from tracking.core.schedule import iso_duration
from tracking.core.ssl_details import FIELD_NAMES

RevocationStatus = strawberry.enum(
    RevocationStatusEnum,
    description="GOOD, REVOKED or UNKNOWN as the issuer's OCSP responder or CRL said; "
    "UNAVAILABLE when there was nobody to ask or no answer that could be trusted.",
)


@strawberry.type
class SslDetails:
    common_name: str | None
    valid_from: datetime
    valid_until: datetime
    issued_by: str | None
    organization: str | None
    organizational_unit: str | None
    location: str | None
    serial_number: str
    signature_algorithm: str
    subject_alternative_names: str
    subject_alternative_name_list: list[str]
    fingerprint_sha256: str
    # --- key and TLS facts ---
    key_type: str = strawberry.field(
        description='The subject public key\'s algorithm: "RSA", "EC", "Ed25519", "Ed448", "DSA".'
    )
    key_size: int = strawberry.field(
        description="The public key's size in bits (RSA 2048, EC 256, Ed25519 256, Ed448 456)."
    )
    tls_version: str | None = strawberry.field(
        description='The negotiated TLS version ("TLSv1.3"); null for a PEM source.'
    )
    cipher: str | None = strawberry.field(
        description='The negotiated cipher ("TLS_AES_256_GCM_SHA384"); null for a PEM source.'
    )
    # ---
    chain_pem: str = strawberry.field(description="The chain as the server sent it, leaf first.")
    chain_length: int
    chain_trusted: bool = strawberry.field(
        description="Whether the chain verifies against the system trust store "
        "(and DSTRACK_CA_BUNDLE)."
    )
    chain_trust_error: str | None
    hostname_matches: bool | None = strawberry.field(
        description="Whether the certificate covers the host name; null for a PEM source."
    )
    retrieved_at: datetime
    revocation_status: RevocationStatus = strawberry.field(  # type: ignore[valid-type]
        description="From the OCSP responder of the certificate, else its CRL. PEM devices: "
        "UNAVAILABLE unless an OCSP responder answers for it."
    )
    revocation_checked_at: datetime | None = strawberry.field(
        description="When dstrack last asked; null when there was nobody to ask."
    )
    revoked_at: datetime | None
    revocation_reason: str | None = strawberry.field(
        description='The reason code as RFC 5280 names it ("keyCompromise", "superseded"...).'
    )

    @classmethod
    def from_row(cls, row: SslDetailsRecord | sa.Row[Any]) -> SslDetails:
        """From the record, or from a plain row of its table (same names, no ORM object): the
        fields of ``tracking.core.ssl_details.SslDetails`` by name, then the chain and verdicts."""
        shared = {name: getattr(row, name) for name in FIELD_NAMES}
        sans = shared.pop("subject_alternative_names")
        return cls(
            **shared,
            subject_alternative_names=" | ".join(sans),
            subject_alternative_name_list=list(sans),
            tls_version=row.protocol,
            cipher=row.cipher,
            chain_pem=row.chain_pem,
            chain_length=row.chain_length,
            chain_trusted=row.trusted,
            chain_trust_error=row.trust_error,
            hostname_matches=row.hostname_matches,
            retrieved_at=row.retrieved_at,
            revocation_status=RevocationStatusEnum(row.revocation_status),
            revocation_checked_at=row.revocation_checked_at,
            revoked_at=row.revoked_at,
            revocation_reason=row.revocation_reason,
        )


@strawberry.type(description="One address of a host and what it served.")
class TlsEndpoint:
    address: str
    port: int
    fingerprint_sha256: str | None = strawberry.field(
        description="SHA-256 fingerprint of the leaf served there; null when it failed."
    )
    valid_until: datetime | None
    tls_version: str | None
    cipher: str | None
    error: str | None = strawberry.field(description="Why no certificate was retrieved there.")

    @classmethod
    def of(cls, endpoint: Endpoint) -> TlsEndpoint:
        return cls(
            address=endpoint.address,
            port=endpoint.port,
            fingerprint_sha256=endpoint.fingerprint_sha256,
            valid_until=endpoint.valid_until,
            tls_version=endpoint.tls_version,
            cipher=endpoint.cipher,
            error=endpoint.error,
        )


@strawberry.type
class DnsRecord:
    name: str
    type: str
    ttl: int
    value: str


@strawberry.type
class DomainDetails:
    registrar: str | None
    registrant_organization: str | None
    created_at: datetime | None
    updated_at: datetime | None
    expires_at: datetime | None
    name_servers: list[str]
    statuses: list[str]
    dnssec: bool | None
    source: str = strawberry.field(description='"RDAP", "WHOIS" or "MANUAL".')
    dns_records: list[DnsRecord]
    registered: bool | None = strawberry.field(
        description="False when the registry says the domain is not registered."
    )
    registration_error: str | None
    dns_error: str | None
    retrieved_at: datetime | None

    @classmethod
    def from_row(cls, row: DomainDetailsRecord) -> DomainDetails:
        return cls(
            registrar=row.registrar,
            registrant_organization=row.registrant_organization,
            created_at=row.created_at,
            updated_at=row.updated_at,
            expires_at=row.expires_at,
            name_servers=list(row.name_servers),
            statuses=list(row.statuses),
            dnssec=row.dnssec,
            source=row.source,
            dns_records=[
                DnsRecord(name=r["name"], type=r["type"], ttl=r["ttl"], value=r["value"])
                for r in row.dns_records
            ],
            registered=row.registered,
            registration_error=row.registration_error,
            dns_error=row.dns_error,
            retrieved_at=row.retrieved_at,
        )


@strawberry.type
class UpdateSchedule:
    next_update_at: datetime
    interval: str
    reason: str

    @classmethod
    def from_row(cls, row: UpdateJob) -> UpdateSchedule:
        return cls(
            next_update_at=row.due_at,
            interval=iso_duration(timedelta(seconds=row.interval_seconds)),
            reason=row.reason,
        )
