"""Rules shared by creating and editing a device: what may be typed, who may edit, and when a
retrieval is allowed."""

from __future__ import annotations

from sqlmodel import Session

from models import Device, DeviceCategory, Organization
from tracking.core.errors import ErrorCode, ValidationError, not_found
from tracking.core.sources import DomainName, HostSource, SslSource, parse_domain, parse_ssl_source
from tracking.manage.access import Viewer
from tracking.refresh.switch import tracking_enabled

LOCKED_CATEGORIES = (DeviceCategory.DOMAIN, DeviceCategory.SSL_CERTIFICATE)


def required(text: str | None, field: str, what: str) -> str:
    if text is None or not text.strip():
        raise ValidationError(ErrorCode.REQUIRED, f"{what} is required.", field=field)
    return text


def source_input(text: str | None) -> SslSource:
    return parse_ssl_source(
        required(text, "sslSource", "An SSL Source for an SSL Certificate device")
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
    if device is None or organization is None or not viewer.may_view(organization.type):
        raise not_found("id", "Device")
    if not viewer.may_edit_devices(organization.type):
        raise ValidationError(
            ErrorCode.FORBIDDEN, "Your security level does not allow editing devices."
        )
    return device
