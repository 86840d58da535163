"""Creating and editing devices: validation, the first retrieval, activation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import Device, DeviceCategory, Organization, SslSourceKind, UpdateJob
from models.db import reader, transaction
from models.inventory import DESCRIPTION_MAX, NAME_MAX
from tracking import clock
from tracking.access import Viewer
from tracking.audit import (
    AuditResult,
    CertificateSnapshot,
    add_note,
    apply_certificate,
    retrieve_certificate,
    sync_job,
    update_audit,
    update_many,
)
from tracking.errors import DstrackError, ErrorCode, ValidationError
from tracking.inventory import (
    contract_for_device,
    not_found,
    product_for_device,
    store_tracking_enabled,
    tracking_enabled,
    visible_organization,
)
from tracking.services import Services
from tracking.sources import HostSource, PemSource, SslSource, parse_ssl_source
from tracking.text import clean_text, optional_name

LOCKED_CATEGORIES = (DeviceCategory.DOMAIN, DeviceCategory.SSL_CERTIFICATE)


@dataclass(frozen=True)
class NewDevice:
    organization_id: int | None
    category: DeviceCategory
    contract_id: int | None = None
    name: str | None = None
    product_id: int | None = None
    description: str | None = None
    active: bool = True
    ssl_source: str | None = None
    domain: str | None = None
    create_ssl_certificate: bool = True


@dataclass(frozen=True)
class DeviceChanges:
    """Fields of ``updateDevice``; None means "leave as it is"."""

    name: str | None = None
    product_id: int | None = None
    contract_id: int | None = None
    description: str | None = None
    category: DeviceCategory | None = None
    ssl_source: str | None = None
    domain: str | None = None
    expires_at: datetime | None = None
    registrar: str | None = None


def _parse_source(text: str | None) -> SslSource:
    if text is None or not text.strip():
        raise ValidationError(
            ErrorCode.REQUIRED,
            "An SSL Source is required for an SSL Certificate device.",
            field="sslSource",
        )
    return parse_ssl_source(text)


def _default_name(source: SslSource, snap: CertificateSnapshot) -> str:
    if isinstance(source, HostSource):
        return source.display[:NAME_MAX]
    return (snap.details.common_name or snap.details.fingerprint_sha256)[:NAME_MAX]


def _set_source(device: Device, source: SslSource) -> None:
    if isinstance(source, PemSource):
        device.ssl_source_kind = SslSourceKind.PEM
        device.ssl_pem = source.pem
        device.ssl_host = None
        device.ssl_port = None
    else:
        device.ssl_source_kind = SslSourceKind.HOST
        device.ssl_host = source.host
        device.ssl_port = source.port
        device.ssl_pem = None


def _ensure_retrieval_allowed(session: Session, source: SslSource) -> None:
    if isinstance(source, HostSource) and not tracking_enabled(session):
        raise ValidationError(ErrorCode.TRACKING_DISABLED, field="sslSource")


async def create_device(services: Services, *, viewer: Viewer, new: NewDevice) -> Device:
    """Validate, retrieve what the outside world says, then save it all in one transaction.

    An SSL source that fails validation or retrieval saves nothing.
    """
    name = optional_name(new.name, field="name", max_length=NAME_MAX)
    description = clean_text(new.description, field="description", max_length=DESCRIPTION_MAX)
    if new.category == DeviceCategory.STANDARD and name is None:
        raise ValidationError(ErrorCode.REQUIRED, "name is required.", field="name")
    if new.category == DeviceCategory.DOMAIN:
        raise ValidationError(
            ErrorCode.INVALID_INPUT, "Domain devices are not available yet.", field="category"
        )
    source: SslSource | None = None
    with reader(services.engine) as session:
        organization = visible_organization(
            session, viewer, new.organization_id, field="organizationId"
        )
        if not viewer.may_add_devices(organization.type):
            raise not_found("organizationId", "Organization")
        if new.contract_id is not None:
            contract_for_device(session, viewer, new.contract_id, organization)
        product = product_for_device(session, new.product_id, new.category)
        if new.category == DeviceCategory.SSL_CERTIFICATE:
            source = _parse_source(new.ssl_source)
            _ensure_retrieval_allowed(session, source)

    snap = await retrieve_certificate(services, source) if source is not None else None

    now = clock.now()
    with transaction(services.engine) as session:
        device = Device(
            category=new.category,
            name=name or (_default_name(source, snap) if source and snap else ""),
            description=description,
            active=new.active,
            organization_id=organization.id,  # type: ignore[arg-type]
            contract_id=new.contract_id,
            product_id=product.id,  # type: ignore[arg-type]
            created_at=now,
            modified_at=now,
        )
        if source is not None:
            _set_source(device, source)
        session.add(device)
        session.flush()
        add_note(session, device, f"Device created by {viewer.name}.", author=viewer.name, now=now)
        if snap is not None:
            apply_certificate(
                session, device, snap, raw_store=services.raw_store, author=viewer.name, now=now
            )
        else:
            sync_job(session, device, now=now)
        return device


def editable_device(session: Session, viewer: Viewer, device_id: int | None) -> Device:
    device = session.get(Device, device_id) if device_id else None
    organization = session.get(Organization, device.organization_id) if device else None
    if device is None or organization is None or not viewer.may_view(organization.type):
        raise not_found("id", "Device")
    if not viewer.may_edit_devices(organization.type):
        raise ValidationError(
            ErrorCode.FORBIDDEN, "Your security level does not allow editing devices."
        )
    return device


def _check_category(device: Device, category: DeviceCategory | None) -> None:
    if category is None or category == device.category:
        return
    if device.category in LOCKED_CATEGORIES or category in LOCKED_CATEGORIES:
        raise ValidationError(ErrorCode.CATEGORY_LOCKED, field="category")


async def update_device(
    services: Services,
    *,
    viewer: Viewer,
    device_id: int | None,
    changes: DeviceChanges,
    update_details: bool = False,
) -> tuple[Device, AuditResult | None]:
    """Save edits; retrieve again when the source changed or ``update_details`` is asked.

    A changed SSL source that fails validation or retrieval saves nothing. When only
    ``update_details`` was asked and the retrieval fails, the edits are saved and the failure
    is recorded on the device (and returned in the audit result).
    """
    with reader(services.engine) as session:
        device = editable_device(session, viewer, device_id)
        _check_category(device, changes.category)
        name = optional_name(changes.name, field="name", max_length=NAME_MAX)
        if changes.name is not None and name is None:
            raise ValidationError(ErrorCode.REQUIRED, "name is required.", field="name")
        description = (
            clean_text(changes.description, field="description", max_length=DESCRIPTION_MAX)
            if changes.description is not None
            else None
        )
        organization = session.get(Organization, device.organization_id)
        assert organization is not None
        if changes.contract_id is not None:
            contract_for_device(session, viewer, changes.contract_id, organization)
        if changes.product_id is not None:
            product_for_device(session, changes.product_id, device.category)
        new_source: SslSource | None = None
        if changes.ssl_source is not None:
            if device.category != DeviceCategory.SSL_CERTIFICATE:
                raise ValidationError(
                    ErrorCode.INVALID_INPUT,
                    "Only SSL Certificate devices have an SSL Source.",
                    field="sslSource",
                )
            new_source = _parse_source(changes.ssl_source)
            _ensure_retrieval_allowed(session, new_source)

    snap = await retrieve_certificate(services, new_source) if new_source is not None else None

    now = clock.now()
    with transaction(services.engine) as session:
        device = editable_device(session, viewer, device_id)
        if name is not None:
            device.name = name
        if changes.description is not None:
            device.description = description
        if changes.contract_id is not None:
            device.contract_id = changes.contract_id
        if changes.product_id is not None:
            device.product_id = changes.product_id
        device.modified_at = now
        session.add(device)
        result = None
        if new_source is not None and snap is not None:
            _set_source(device, new_source)
            add_note(session, device, "SSL Source changed.", author=viewer.name, now=now)
            result = apply_certificate(
                session, device, snap, raw_store=services.raw_store, author=viewer.name, now=now
            )
    if update_details and new_source is None:
        result = await update_audit(services, device.id, author=viewer.name)  # type: ignore[arg-type]
    with reader(services.engine) as session:
        fresh = session.get(Device, device.id)
        assert fresh is not None
    return fresh, result


async def set_device_active(
    services: Services, *, viewer: Viewer, device_id: int | None, active: bool
) -> Device:
    now = clock.now()
    with transaction(services.engine) as session:
        device = editable_device(session, viewer, device_id)
        if device.active != active:
            device.active = active
            device.modified_at = now
            session.add(device)
            add_note(
                session,
                device,
                f"Device {'activated' if active else 'inactivated'} by {viewer.name}.",
                author=viewer.name,
                now=now,
            )
            sync_job(session, device, now=now)
        return device


MAX_FORCED_UPDATES = 100
FORCED_UPDATE_CONCURRENCY = 8


async def force_update(
    services: Services, *, viewer: Viewer, device_ids: Sequence[int]
) -> list[AuditResult]:
    """ "Update SSL Certificate Details" / "Update Domain Details" for one or many devices.

    Each device gets its own result; an unknown or forbidden device is a NOT_FOUND result,
    not a failure of the whole request.
    """
    if len(device_ids) > MAX_FORCED_UPDATES:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f"At most {MAX_FORCED_UPDATES} devices can be updated in one request.",
            field="ids",
        )
    allowed: list[int] = []
    refused: dict[int, DstrackError] = {}
    with reader(services.engine) as session:
        for device_id in dict.fromkeys(device_ids):
            try:
                editable_device(session, viewer, device_id)
                allowed.append(device_id)
            except DstrackError as error:
                refused[device_id] = error
    done = {
        r.device_id: r
        for r in await update_many(
            services, allowed, author=viewer.name, concurrency=FORCED_UPDATE_CONCURRENCY
        )
    }
    return [
        done[i] if i in done else AuditResult(device_id=i, error=refused[i]) for i in device_ids
    ]


def load_devices(engine: Engine, device_ids: Sequence[int]) -> dict[int, Device]:
    with reader(engine) as session:
        rows = session.exec(select(Device).where(col(Device.id).in_(set(device_ids)))).all()
    return {row.id: row for row in rows if row.id is not None}


def set_tracking_enabled(services: Services, *, viewer: Viewer, enabled: bool) -> None:
    """Turn Domain & SSL Tracking on or off; every auto-updating job follows at once."""
    if not viewer.is_admin:
        raise ValidationError(
            ErrorCode.FORBIDDEN, "Only administrators may switch Domain & SSL Tracking."
        )
    now = clock.now()
    with transaction(services.engine) as session:
        if tracking_enabled(session) == enabled:
            return
        store_tracking_enabled(session, enabled)
        session.flush()
        if not enabled:
            session.execute(sa.delete(UpdateJob))
            return
        candidates = session.exec(
            select(Device).where(
                col(Device.active),
                col(Device.category).in_(LOCKED_CATEGORIES),
            )
        ).all()
        for device in candidates:
            sync_job(session, device, now=now)
