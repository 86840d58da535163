"""GraphQL types of devices: the device itself, its source, Activity, RAW files and results."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from api.context import Info
from api.types.common import DeviceCategory, Node, PageInfo, SslSourceKind, UserError
from api.types.details import DomainDetails, SslDetails, UpdateSchedule
from api.types.inventory import Contract, Organization, Product
from models import ActivityNote as ActivityNoteRow
from models import Device as DeviceRow
from models import DeviceCategory as DeviceCategoryEnum
from models import RawFile as RawFileRow
from models import SslSourceKind as SslSourceKindEnum
from tracking.core.ids import encode_id
from tracking.core.sources import TLS_AT_ONCE, unicode_name
from tracking.manage.queries import DeviceList

if TYPE_CHECKING:
    from api.types.alerts import Alert

MAX_ACTIVITY = 100
MAX_DEVICE_ALERTS = 100


@strawberry.type
class SslSource:
    kind: SslSourceKind  # type: ignore[valid-type]
    host: str | None
    port: int | None
    pem: str | None
    protocol: str = strawberry.field(
        description='How the certificate is reached: "tls" (at once), "https", or "pem".'
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
    alerts_muted: bool = strawberry.field(description="A muted device raises no alert.")
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
            alerts_muted=row.alerts_muted,
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
        kind = SslSourceKindEnum(row.ssl_source_kind)
        return SslSource(
            kind=kind,
            host=row.ssl_host,
            port=row.ssl_port,
            pem=row.ssl_pem,
            protocol="pem" if kind == SslSourceKindEnum.PEM else row.ssl_protocol or TLS_AT_ONCE,
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
    async def alerts(
        self, info: Info, first: int | None = 20
    ) -> list[Annotated[Alert, strawberry.lazy("api.types.alerts")]]:
        from api.types.alerts import Alert

        first = max(0, min(20 if first is None else first, MAX_DEVICE_ALERTS))
        if first == 0:
            return []
        rows = await info.context.loaders.device_alerts.load((self.pk, first))
        return [Alert.from_row(r) for r in rows]

    @strawberry.field(description="Newest first.")
    async def raw_files(self, info: Info) -> list[RawFile]:
        rows = await info.context.loaders.raw_files.load(self.pk)
        return [RawFile.from_row(r) for r in rows]


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
class TrackingSettings:
    enabled: bool


@strawberry.type
class DevicePayload:
    device: Device | None
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
