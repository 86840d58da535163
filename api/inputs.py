"""GraphQL input types of the inventory, devices and access."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.types import DeviceCategory, OrganizationType
from api.types.alerts import AlertKind, AlertState, NotificationChannelKind


@strawberry.input
class DeviceFilter:
    organization_id: strawberry.ID | None = None
    contract_id: strawberry.ID | None = None
    category: DeviceCategory | None = None  # type: ignore[valid-type]
    active: bool | None = None
    expiring_before: datetime | None = None


@strawberry.input
class CreateOrganizationInput:
    name: str
    type: OrganizationType  # type: ignore[valid-type]


@strawberry.input
class CreateContractInput:
    organization_id: strawberry.ID
    name: str


@strawberry.input
class CreateProductInput:
    name: str


@strawberry.input
class CreateDeviceInput:
    organization_id: strawberry.ID
    category: DeviceCategory  # type: ignore[valid-type]
    contract_id: strawberry.ID | None = None
    name: str | None = None
    product_id: strawberry.ID | None = None
    description: str | None = None
    active: bool | None = True
    ssl_source: str | None = strawberry.field(
        default=None, description="SSL_CERTIFICATE: a PEM certificate or a certificate host."
    )
    domain: str | None = strawberry.field(default=None, description="DOMAIN: the domain name.")
    create_ssl_certificate: bool | None = strawberry.field(
        default=True,
        description="DOMAIN: also create a child SSL device when the domain serves a certificate.",
    )


@strawberry.input
class UpdateDeviceInput:
    name: str | None = None
    product_id: strawberry.ID | None = None
    contract_id: strawberry.ID | None = None
    description: str | None = None
    category: DeviceCategory | None = None  # type: ignore[valid-type]
    ssl_source: str | None = None
    domain: str | None = None
    expires_at: datetime | None = strawberry.field(
        default=None, description="Manual registration expiry of a domain (source MANUAL)."
    )
    registrar: str | None = strawberry.field(
        default=None, description="Manual registrar of a domain (source MANUAL)."
    )


@strawberry.input
class CreateSecurityLevelInput:
    name: str
    crm_access: bool
    view_organization_types: list[OrganizationType]  # type: ignore[valid-type]
    can_add_devices: bool
    can_edit_devices: bool
    can_delete_devices: bool
    is_admin: bool | None = False


@strawberry.input
class CreateUserInput:
    name: str
    security_level_id: strawberry.ID


@strawberry.input
class AlertFilter:
    organization_id: strawberry.ID | None = None
    device_id: strawberry.ID | None = None
    kind: AlertKind | None = None  # type: ignore[valid-type]
    state: AlertState | None = None  # type: ignore[valid-type]


@strawberry.input
class CreateNotificationChannelInput:
    name: str
    kind: NotificationChannelKind  # type: ignore[valid-type]
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description="Null: a global channel (administrators only)."
    )
    email_to: list[str] | None = strawberry.field(default=None, description="EMAIL: recipients.")
    url: str | None = strawberry.field(
        default=None,
        description="WEBHOOK: an http(s) URL. APPRISE: an Apprise URL (json://, slack://, ...).",
    )
    secret: str | None = strawberry.field(
        default=None,
        description='WEBHOOK: the signing secret ("whsec_<base64>"); generated when absent.',
    )


@strawberry.input
class SetAlertPolicyInput:
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description="Null: the global default policy (administrators only)."
    )
    expiry_thresholds_days: list[int] | None = None
    notify_on_change: bool | None = None
    failures_before_alert: int | None = None
    channel_ids: list[strawberry.ID] | None = None
