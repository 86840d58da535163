"""The customer inventory: organizations, contracts, products and devices."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.enums import DeviceCategory, OrganizationType, SslSourceKind
from models.types import UTCDateTime

NAME_MAX = 200
DESCRIPTION_MAX = 4000


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=NAME_MAX, index=True)
    type: OrganizationType = Field(sa_type=sa.String(16), index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Contract(SQLModel, table=True):
    __tablename__ = "contracts"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=NAME_MAX)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Product(SQLModel, table=True):
    __tablename__ = "products"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=NAME_MAX, unique=True)
    is_system: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)


class CategoryDefaultProduct(SQLModel, table=True):
    """The product a new device of a category gets when none is chosen."""

    __tablename__ = "category_default_products"

    category: DeviceCategory = Field(sa_type=sa.String(16), primary_key=True)
    product_id: int = Field(foreign_key="products.id")


class Device(SQLModel, table=True):
    __tablename__ = "devices"
    __table_args__ = (
        sa.Index("ix_devices_org_id", "organization_id", "id"),
        # The expiry sweep (tracking.alerts) walks this index: active, unmuted devices whose
        # next expiry check is due, in order, without visiting any other row.
        sa.Index(
            "ix_devices_expiry_alert_due", "alerts_muted", "active", "expiry_alert_due_at", "id"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    category: DeviceCategory = Field(sa_type=sa.String(16), index=True)
    name: str = Field(max_length=NAME_MAX)
    description: str | None = Field(default=None, sa_type=sa.Text)
    active: bool = True
    organization_id: int = Field(foreign_key="organizations.id")
    contract_id: int | None = Field(default=None, foreign_key="contracts.id", index=True)
    product_id: int = Field(foreign_key="products.id")
    parent_id: int | None = Field(default=None, foreign_key="devices.id", index=True)

    # SSL_CERTIFICATE: the SSL Source, either a PEM or a host.
    ssl_source_kind: SslSourceKind | None = Field(default=None, sa_type=sa.String(8))
    ssl_host: str | None = Field(default=None, max_length=255)
    ssl_port: int | None = None
    ssl_protocol: str | None = Field(default=None, max_length=16)  # "tls", "https", "smtp"...
    ssl_pem: str | None = Field(default=None, sa_type=sa.Text)

    # DOMAIN: the registrable domain, A-labels.
    domain: str | None = Field(default=None, max_length=253, index=True)

    # Denormalized from the current audit, for filters ("expiring before").
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    last_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_update_error: str | None = Field(default=None, sa_type=sa.Text)
    consecutive_failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Alerts: a muted device raises none; the expiry sweep looks at the device again at
    # ``expiry_alert_due_at`` (the next threshold crossing; None: nothing left to raise).
    alerts_muted: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    expiry_alert_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    modified_at: datetime = Field(sa_type=UTCDateTime)
