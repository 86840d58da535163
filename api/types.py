"""GraphQL types (CONTRACT.md section 2). Separate from the ORM rows; built with ``from_row``."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import strawberry

from api.context import Info
from models import ActivityNote as ActivityNoteRow
from models import Contract as ContractRow
from models import Device as DeviceRow
from models import DeviceCategory as DeviceCategoryEnum
from models import DomainDetailsRecord, SslDetailsRecord, UpdateJob
from models import Organization as OrganizationRow
from models import OrganizationType as OrganizationTypeEnum
from models import Product as ProductRow
from models import RawFile as RawFileRow
from models import SecurityLevel as SecurityLevelRow
from models import SslSourceKind as SslSourceKindEnum
from tracking.core.errors import DstrackError
from tracking.core.ids import encode_id
from tracking.core.schedule import iso_duration
from tracking.core.sources import unicode_name
from tracking.manage.queries import DeviceList, OrganizationName, ProductName

DeviceCategory = strawberry.enum(DeviceCategoryEnum)
OrganizationType = strawberry.enum(OrganizationTypeEnum)
SslSourceKind = strawberry.enum(SslSourceKindEnum)

MAX_ACTIVITY = 100


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class UserError:
    field: str | None
    code: str
    message: str

    @classmethod
    def from_error(cls, error: DstrackError) -> UserError:
        return cls(field=error.field, code=error.code.value, message=error.message)


@strawberry.type
class Organization(Node):
    name: str
    type: OrganizationType  # type: ignore[valid-type]
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: OrganizationRow | OrganizationName) -> Organization:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Organization", row.id)),
            name=row.name,
            type=OrganizationTypeEnum(row.type),
            pk=row.id,
        )


@strawberry.type
class Contract(Node):
    name: str
    organization_pk: strawberry.Private[int]

    @strawberry.field
    async def organization(self, info: Info) -> Organization:
        row = await info.context.loaders.organization.load(self.organization_pk)
        return Organization.from_row(row)

    @classmethod
    def from_row(cls, row: ContractRow) -> Contract:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Contract", row.id)),
            name=row.name,
            organization_pk=row.organization_id,
        )


@strawberry.type
class Product(Node):
    name: str
    is_system: bool

    @classmethod
    def from_row(cls, row: ProductRow | ProductName) -> Product:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Product", row.id)), name=row.name, is_system=row.is_system
        )


@strawberry.type
class SslSource:
    kind: SslSourceKind  # type: ignore[valid-type]
    host: str | None
    port: int | None
    pem: str | None


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

    @classmethod
    def from_row(cls, row: SslDetailsRecord | sa.Row[Any]) -> SslDetails:
        """From the record, or from a plain row of its table (same names, no ORM object)."""
        return cls(
            common_name=row.common_name,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            issued_by=row.issued_by,
            organization=row.organization,
            organizational_unit=row.organizational_unit,
            location=row.location,
            serial_number=row.serial_number,
            signature_algorithm=row.signature_algorithm,
            subject_alternative_names=" | ".join(row.subject_alternative_names),
            subject_alternative_name_list=list(row.subject_alternative_names),
            fingerprint_sha256=row.fingerprint_sha256,
            chain_pem=row.chain_pem,
            chain_length=row.chain_length,
            chain_trusted=row.trusted,
            chain_trust_error=row.trust_error,
            hostname_matches=row.hostname_matches,
            retrieved_at=row.retrieved_at,
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


@strawberry.type
class ActivityNote(Node):
    created_at: datetime
    author: str
    text: str

    @classmethod
    def from_row(cls, row: ActivityNoteRow) -> ActivityNote:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("ActivityNote", row.id)),
            created_at=row.created_at,
            author=row.author,
            text=row.text,
        )


@strawberry.type
class RawFile(Node):
    created_at: datetime
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str
    url: str

    @classmethod
    def from_row(cls, row: RawFileRow) -> RawFile:
        assert row.id is not None
        global_id = encode_id("RawFile", row.id)
        return cls(
            id=strawberry.ID(global_id),
            created_at=row.created_at,
            file_name=row.file_name,
            content_type=row.content_type,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            url=f"/raw/{global_id}",
        )


class DevicePage:
    """What the devices of one page point to, fetched with the page itself.

    A page resolves the organization, product and SSL details of its devices from here with
    plain synchronous resolvers: a DataLoader would cost a coroutine and a future per device
    and field, which was most of the time of a large page. SSL details are here when the query
    asks for them (``ssl_details`` is None otherwise, and the DataLoader serves them). Devices
    reached any other way (``node``, ``device``, ``parent``, ``children``, mutation payloads)
    use the DataLoaders.
    """

    def __init__(self, listing: DeviceList) -> None:
        self.organizations = {
            pk: Organization.from_row(row) for pk, row in listing.organizations.items()
        }
        self.products = {pk: Product.from_row(row) for pk, row in listing.products.items()}
        self.ssl_details = (
            None
            if listing.ssl_details is None
            else {pk: SslDetails.from_row(row) for pk, row in listing.ssl_details.items()}
        )


_SSL_CERTIFICATE = DeviceCategoryEnum.SSL_CERTIFICATE


@strawberry.type
class Device(Node):
    name: str
    category: DeviceCategory  # type: ignore[valid-type]
    active: bool
    description: str | None
    domain: str | None
    last_updated_at: datetime | None
    last_update_error: str | None
    expires_at: datetime | None
    row: strawberry.Private[DeviceRow]
    pk: strawberry.Private[int]
    page: strawberry.Private[DevicePage | None] = None

    @classmethod
    def from_row(cls, row: DeviceRow, page: DevicePage | None = None) -> Device:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Device", row.id)),
            name=row.name,
            category=DeviceCategoryEnum(row.category),
            active=row.active,
            description=row.description,
            domain=row.domain,
            last_updated_at=row.last_updated_at,
            last_update_error=row.last_update_error,
            expires_at=row.expires_at,
            row=row,
            pk=row.id,
            page=page,
        )

    @strawberry.field(graphql_type=Organization)
    def organization(self, info: Info) -> Organization | Awaitable[Organization]:
        if self.page is not None:
            return self.page.organizations[self.row.organization_id]
        return self._load_organization(info)

    async def _load_organization(self, info: Info) -> Organization:
        row = await info.context.loaders.organization.load(self.row.organization_id)
        return Organization.from_row(row)

    @strawberry.field
    async def contract(self, info: Info) -> Contract | None:
        if self.row.contract_id is None:
            return None
        row = await info.context.loaders.contract.load(self.row.contract_id)
        return Contract.from_row(row) if row else None

    @strawberry.field(graphql_type=Product)
    def product(self, info: Info) -> Product | Awaitable[Product]:
        if self.page is not None:
            return self.page.products[self.row.product_id]
        return self._load_product(info)

    async def _load_product(self, info: Info) -> Product:
        row = await info.context.loaders.product.load(self.row.product_id)
        return Product.from_row(row)

    @strawberry.field
    async def parent(self, info: Info) -> Device | None:
        if self.row.parent_id is None:
            return None
        row = await info.context.loaders.device.load(self.row.parent_id)
        return Device.from_row(row) if row else None

    @strawberry.field
    async def children(self, info: Info) -> list[Device]:
        rows = await info.context.loaders.children.load(self.pk)
        return [Device.from_row(r) for r in rows]

    @strawberry.field
    def ssl_source(self) -> SslSource | None:
        row = self.row
        if row.ssl_source_kind is None:
            return None
        return SslSource(
            kind=SslSourceKindEnum(row.ssl_source_kind),
            host=row.ssl_host,
            port=row.ssl_port,
            pem=row.ssl_pem,
        )

    @strawberry.field(graphql_type=SslDetails | None)
    def ssl_details(self, info: Info) -> SslDetails | Awaitable[SslDetails | None] | None:
        if self.row.category != _SSL_CERTIFICATE:
            return None
        if self.page is not None and self.page.ssl_details is not None:
            return self.page.ssl_details.get(self.pk)
        return self._load_ssl_details(info)

    async def _load_ssl_details(self, info: Info) -> SslDetails | None:
        row = await info.context.loaders.ssl_details.load(self.pk)
        return SslDetails.from_row(row) if row else None

    @strawberry.field(description="The domain as people read it (U-labels).")
    def domain_unicode(self) -> str | None:
        return unicode_name(self.row.domain) if self.row.domain else None

    @strawberry.field
    async def domain_details(self, info: Info) -> DomainDetails | None:
        if self.row.category != DeviceCategoryEnum.DOMAIN:
            return None
        row = await info.context.loaders.domain_details.load(self.pk)
        return DomainDetails.from_row(row) if row else None

    @strawberry.field(description="Null exactly when no auto-updating job exists.")
    async def update_schedule(self, info: Info) -> UpdateSchedule | None:
        row = await info.context.loaders.update_job.load(self.pk)
        return UpdateSchedule.from_row(row) if row else None

    @strawberry.field(description="Newest first.")
    async def activity(self, info: Info, first: int | None = 20) -> list[ActivityNote]:
        first = max(0, min(20 if first is None else first, MAX_ACTIVITY))
        if first == 0:
            return []
        rows = await info.context.loaders.activity.load((self.pk, first))
        return [ActivityNote.from_row(r) for r in rows]

    @strawberry.field(description="Newest first.")
    async def raw_files(self, info: Info) -> list[RawFile]:
        rows = await info.context.loaders.raw_files.load(self.pk)
        return [RawFile.from_row(r) for r in rows]


@strawberry.type
class SecurityLevel(Node):
    name: str
    crm_access: bool
    view_organization_types: list[OrganizationType]  # type: ignore[valid-type]
    can_add_devices: bool
    can_edit_devices: bool
    can_delete_devices: bool
    is_admin: bool

    @classmethod
    def from_row(cls, row: SecurityLevelRow) -> SecurityLevel:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("SecurityLevel", row.id)),
            name=row.name,
            crm_access=row.crm_access,
            view_organization_types=[OrganizationTypeEnum(t) for t in row.view_organization_types],
            can_add_devices=row.can_add_devices,
            can_edit_devices=row.can_edit_devices,
            can_delete_devices=row.can_delete_devices,
            is_admin=row.is_admin,
        )


@strawberry.type
class User(Node):
    name: str
    security_level: SecurityLevel


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class DeviceEdge:
    cursor: str
    node: Device


@strawberry.type
class DeviceConnection:
    edges: list[DeviceEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class OrganizationEdge:
    cursor: str
    node: Organization


@strawberry.type
class OrganizationConnection:
    edges: list[OrganizationEdge]
    page_info: PageInfo


@strawberry.type
class TrackingSettings:
    enabled: bool


@strawberry.type
class DevicePayload:
    device: Device | None
    errors: list[UserError]


@strawberry.type
class OrganizationPayload:
    organization: Organization | None
    errors: list[UserError]


@strawberry.type
class ContractPayload:
    contract: Contract | None
    errors: list[UserError]


@strawberry.type
class ProductPayload:
    product: Product | None
    errors: list[UserError]


@strawberry.type
class SecurityLevelPayload:
    security_level: SecurityLevel | None
    errors: list[UserError]


@strawberry.type
class CreateUserPayload:
    user: User | None
    token: str | None
    errors: list[UserError]


@strawberry.type
class UpdateResult:
    device_id: strawberry.ID
    device: Device | None
    changed: bool
    message: str
    errors: list[UserError]


@strawberry.type
class ForceUpdatePayload:
    results: list[UpdateResult]
