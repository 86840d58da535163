"""Rules shared by creating and editing a device: what may be typed, who may edit, and when a
retrieval is allowed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import sqlalchemy as sa
from sqlmodel import Session, col

from models import Device, DeviceCategory, Organization
from tracking.core.errors import DstrackError, ErrorCode, ValidationError, not_found
from tracking.core.sources import DomainName, HostSource, SslSource, parse_domain, parse_ssl_source
from tracking.manage.access import Viewer
from tracking.refresh.switch import tracking_enabled

LOCKED_CATEGORIES = (DeviceCategory.DOMAIN, DeviceCategory.SSL_CERTIFICATE)


def required(text: str | None, field: str, what: str) -> str:
    if text is None or not text.strip():
        raise ValidationError(ErrorCode.REQUIRED, f"{what} is required.", field=field)
    return text


def source_input(text: str | None, *, all_addresses: bool = False) -> SslSource:
    """The SSL Source typed; a host source checks every address with ``all_addresses``."""
    source = parse_ssl_source(
        required(text, "sslSource", "An SSL Source for an SSL Certificate device")
    )
    if isinstance(source, HostSource) and all_addresses:
        return replace(source, all_addresses=True)
    return source


def check_addresses_input(category: DeviceCategory, check_all_addresses: bool | None) -> None:
    """checkAllAddresses is a setting of SSL Certificate devices only."""
    if check_all_addresses and category != DeviceCategory.SSL_CERTIFICATE:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            "Only SSL Certificate devices check the addresses of a host.",
            field="checkAllAddresses",
        )


def domain_input(text: str | None) -> DomainName:
    return parse_domain(required(text, "domain", "A domain for a Domain device"))


def stored_domain(domain: DomainName) -> str:
    return f"*.{domain.ascii}" if domain.is_wildcard else domain.ascii


def ensure_retrieval_allowed(session: Session, source: SslSource) -> None:
    if isinstance(source, HostSource) and not tracking_enabled(session):
        raise ValidationError(ErrorCode.TRACKING_DISABLED, field="sslSource")


def domain_retrieval_allowed(session: Session, domain: DomainName) -> bool:
    """Whether a domain's details are retrieved: never for a wildcard, nor with tracking off."""
    return not domain.is_wildcard and tracking_enabled(session)


def why_no_domain_details(domain: DomainName) -> str:
    if domain.is_wildcard:
        return (
            f"*.{domain.unicode} is a wildcard: no registration details or DNS records are "
            "retrieved for wildcard domains."
        )
    return (
        "Domain & SSL Tracking is disabled: no registration details or DNS records were retrieved."
    )


def check_category(device: Device, category: DeviceCategory | None) -> None:
    if category is None or category == device.category:
        return
    if device.category in LOCKED_CATEGORIES or category in LOCKED_CATEGORIES:
        raise ValidationError(ErrorCode.CATEGORY_LOCKED, field="category")


def editable_device(session: Session, viewer: Viewer, device_id: int | None) -> Device:
    """The device, if the viewer may see its organization and edit its devices."""
    device = session.get(Device, device_id) if device_id else None
    organization = session.get(Organization, device.organization_id) if device else None
    refusal = _edit_refusal(viewer, organization.type if organization else None)
    if refusal is not None:
        raise refusal
    assert device is not None
    return device


def edit_refusals(
    session: Session, viewer: Viewer, device_ids: Iterable[int]
) -> dict[int, DstrackError | None]:
    """For each device, why the viewer may not edit it (None: they may), in one query."""
    wanted = sorted({i for i in device_ids if i})
    rows = session.execute(
        sa.select(col(Device.id), col(Organization.type))
        .join(Organization, col(Organization.id) == col(Device.organization_id))
        .where(col(Device.id).in_(wanted))
    )
    types: dict[int, str] = {device_id: kind for device_id, kind in rows}
    return {i: _edit_refusal(viewer, types.get(i)) for i in dict.fromkeys(device_ids)}


def _edit_refusal(viewer: Viewer, organization_type: str | None) -> DstrackError | None:
    if organization_type is None or not viewer.may_view(organization_type):
        return not_found("id", "Device")  # forbidden and missing look the same
    if not viewer.may_edit_devices(organization_type):
        return ValidationError(
            ErrorCode.FORBIDDEN, "Your security level does not allow editing devices."
        )
    return None
