"""Creating and editing devices: validation, the first retrieval, activation, forced updates."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import Device, DeviceCategory, DomainDetailsRecord, Organization, UpdateJob
from models.db import reader, transaction
from models.inventory import DESCRIPTION_MAX, NAME_MAX
from tracking.core import clock
from tracking.core.errors import DstrackError, ErrorCode, ValidationError, not_found
from tracking.core.sources import DomainName, HostSource, SslSource, parse_domain, parse_ssl_source
from tracking.core.text import clean_text, optional_name
from tracking.manage.access import Viewer
from tracking.manage.inventory import contract_for_device, product_for_device, visible_organization
from tracking.refresh.certificate import set_source
from tracking.refresh.domain import apply_manual_registration, find_domain_certificate
from tracking.refresh.pipeline import (
    AuditResult,
    CertificateSnapshot,
    DomainSnapshot,
    add_note,
    apply_certificate,
    apply_domain,
    audit_target,
    retrieve_certificate,
    retrieve_domain,
    sync_job,
    update_audit,
    update_many,
)
from tracking.refresh.services import Services
from tracking.refresh.switch import store_tracking_enabled, tracking_enabled

LOCKED_CATEGORIES = (DeviceCategory.DOMAIN, DeviceCategory.SSL_CERTIFICATE)
MAX_FORCED_UPDATES = 100
FORCED_UPDATE_CONCURRENCY = 8


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


# --- validation ----------------------------------------------------------------------------


def _required(text: str | None, field: str, what: str) -> str:
    if text is None or not text.strip():
        raise ValidationError(ErrorCode.REQUIRED, f"{what} is required.", field=field)
    return text


def _parse_source(text: str | None) -> SslSource:
    return parse_ssl_source(
        _required(text, "sslSource", "An SSL Source for an SSL Certificate device")
    )


def _parse_domain(text: str | None) -> DomainName:
    return parse_domain(_required(text, "domain", "A domain for a Domain device"))


def _stored_domain(domain: DomainName) -> str:
    return f"*.{domain.ascii}" if domain.is_wildcard else domain.ascii


def _ensure_retrieval_allowed(session: Session, source: SslSource) -> None:
    if isinstance(source, HostSource) and not tracking_enabled(session):
        raise ValidationError(ErrorCode.TRACKING_DISABLED, field="sslSource")


def _check_category(device: Device, category: DeviceCategory | None) -> None:
    if category is None or category == device.category:
        return
    if device.category in LOCKED_CATEGORIES or category in LOCKED_CATEGORIES:
        raise ValidationError(ErrorCode.CATEGORY_LOCKED, field="category")


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


# --- creating --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A validated createDevice input."""

    organization: Organization
    product_id: int
    name: str | None
    description: str | None
    source: SslSource | None = None
    domain: DomainName | None = None
    retrieve_domain: bool = False


def _plan(services: Services, viewer: Viewer, new: NewDevice) -> _Plan:
    name = optional_name(new.name, field="name", max_length=NAME_MAX)
    description = clean_text(new.description, field="description", max_length=DESCRIPTION_MAX)
    if new.category == DeviceCategory.STANDARD and name is None:
        raise ValidationError(ErrorCode.REQUIRED, "name is required.", field="name")
    if new.ssl_source is not None and new.category != DeviceCategory.SSL_CERTIFICATE:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            "Only SSL Certificate devices have an SSL Source.",
            field="sslSource",
        )
    if new.domain is not None and new.category != DeviceCategory.DOMAIN:
        raise ValidationError(
            ErrorCode.INVALID_INPUT, "Only Domain devices have a domain.", field="domain"
        )
    with reader(services.engine) as session:
        organization = visible_organization(
            session, viewer, new.organization_id, field="organizationId"
        )
        if not viewer.may_add_devices(organization.type):
            raise ValidationError(
                ErrorCode.FORBIDDEN, "Your security level does not allow adding devices."
            )
        if new.contract_id is not None:
            contract_for_device(session, viewer, new.contract_id, organization)
        product = product_for_device(session, new.product_id, new.category)
        assert product.id is not None
        plan = _Plan(organization, product.id, name, description)
        if new.category == DeviceCategory.SSL_CERTIFICATE:
            source = _parse_source(new.ssl_source)
            _ensure_retrieval_allowed(session, source)
            plan = replace(plan, source=source)
        elif new.category == DeviceCategory.DOMAIN:
            domain = _parse_domain(new.domain)
            retrieve = tracking_enabled(session) and not domain.is_wildcard
            plan = replace(plan, domain=domain, retrieve_domain=retrieve)
    return plan


async def create_device(services: Services, *, viewer: Viewer, new: NewDevice) -> Device:
    """Validate, retrieve what the outside world says, then save it all in one transaction.

    An SSL source that fails validation or retrieval saves nothing. A well-formed domain is
    saved whatever its look-ups give; the failures are recorded on it.
    """
    plan = _plan(services, viewer, new)
    cert_snap = await retrieve_certificate(services, plan.source) if plan.source else None
    domain_snap: DomainSnapshot | None = None
    child: tuple[HostSource, CertificateSnapshot] | str | None = None
    if plan.domain is not None and plan.retrieve_domain:
        if new.create_ssl_certificate:
            domain_snap, child = await asyncio.gather(
                retrieve_domain(services, plan.domain.ascii),
                find_domain_certificate(services, plan.domain.ascii),
            )
        else:
            domain_snap = await retrieve_domain(services, plan.domain.ascii)

    now = clock.now()
    author = viewer.name
    with transaction(services.engine) as session:
        device = Device(
            category=new.category,
            name=plan.name or _default_name(plan, cert_snap),
            description=plan.description,
            active=new.active,
            organization_id=plan.organization.id,  # type: ignore[arg-type]
            contract_id=new.contract_id,
            product_id=plan.product_id,
            created_at=now,
            modified_at=now,
        )
        if plan.source is not None:
            set_source(device, plan.source)
        if plan.domain is not None:
            device.domain = _stored_domain(plan.domain)
        session.add(device)
        session.flush()
        add_note(session, device, f"Device created by {author}.", author=author, now=now)
        if cert_snap is not None:
            apply_certificate(
                session, device, cert_snap, raw_store=services.raw_store, author=author, now=now
            )
        elif domain_snap is not None:
            apply_domain(
                session, device, domain_snap, raw_store=services.raw_store, author=author, now=now
            )
            if child is not None:
                _add_child_certificate(session, services, device, child, author=author, now=now)
        elif plan.domain is not None:
            add_note(session, device, _why_no_domain_details(plan.domain), author=author, now=now)
            sync_job(session, device, now=now)
        else:
            sync_job(session, device, now=now)
        return device


def _default_name(plan: _Plan, snap: CertificateSnapshot | None) -> str:
    if isinstance(plan.source, HostSource):
        return plan.source.display[:NAME_MAX]
    if snap is not None:
        return (snap.details.common_name or snap.details.fingerprint_sha256)[:NAME_MAX]
    assert plan.domain is not None
    unicode = plan.domain.unicode
    return (f"*.{unicode}" if plan.domain.is_wildcard else unicode)[:NAME_MAX]


def _why_no_domain_details(domain: DomainName) -> str:
    if domain.is_wildcard:
        return (
            f"*.{domain.unicode} is a wildcard: no registration details or DNS records are "
            "retrieved for wildcard domains."
        )
    return (
        "Domain & SSL Tracking is disabled: no registration details or DNS records were retrieved."
    )


def _add_child_certificate(
    session: Session,
    services: Services,
    domain_device: Device,
    found: tuple[HostSource, CertificateSnapshot] | str,
    *,
    author: str,
    now: datetime,
) -> None:
    """The SSL Certificate device for the certificate the domain serves, as its child."""
    if isinstance(found, str):
        add_note(
            session,
            domain_device,
            f"No SSL certificate was found for the domain ({found}).",
            author=author,
            now=now,
        )
        return
    source, snap = found
    product = product_for_device(session, None, DeviceCategory.SSL_CERTIFICATE)
    child = Device(
        category=DeviceCategory.SSL_CERTIFICATE,
        name=source.display[:NAME_MAX],
        active=domain_device.active,
        organization_id=domain_device.organization_id,
        contract_id=domain_device.contract_id,
        product_id=product.id,  # type: ignore[arg-type]
        parent_id=domain_device.id,
        created_at=now,
        modified_at=now,
    )
    set_source(child, source)
    session.add(child)
    session.flush()
    add_note(
        session,
        child,
        f"Device created by {author} with the domain {domain_device.name}.",
        author=author,
        now=now,
    )
    apply_certificate(session, child, snap, raw_store=services.raw_store, author=author, now=now)
    add_note(
        session,
        domain_device,
        f"SSL Certificate device created for the certificate served by {source.display}.",
        author=author,
        now=now,
    )


# --- editing ---------------------------------------------------------------------------------


async def update_device(
    services: Services,
    *,
    viewer: Viewer,
    device_id: int | None,
    changes: DeviceChanges,
    update_details: bool = False,
) -> tuple[Device, AuditResult | None]:
    """Save edits; retrieve again when the source or domain changed or ``update_details``.

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
        description = clean_text(
            changes.description, field="description", max_length=DESCRIPTION_MAX
        )
        registrar = optional_name(changes.registrar, field="registrar", max_length=NAME_MAX)
        organization = session.get(Organization, device.organization_id)
        assert organization is not None
        if changes.contract_id is not None:
            contract_for_device(session, viewer, changes.contract_id, organization)
        if changes.product_id is not None:
            product_for_device(session, changes.product_id, device.category)
        new_source = _changed_source(session, device, changes)
        new_domain = _changed_domain(device, changes)
        if update_details and new_source is None and new_domain is None:
            audit_target(session, device)  # refuse before saving anything
        retrieve_new_domain = new_domain is not None and (
            tracking_enabled(session) and not new_domain.is_wildcard
        )

    cert_snap = await retrieve_certificate(services, new_source) if new_source else None
    domain_snap = (
        await retrieve_domain(services, new_domain.ascii)
        if new_domain is not None and retrieve_new_domain
        else None
    )

    now = clock.now()
    author = viewer.name
    result: AuditResult | None = None
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
        if new_source is not None and cert_snap is not None:
            set_source(device, new_source)
            add_note(session, device, "SSL Source changed.", author=author, now=now)
            result = apply_certificate(
                session, device, cert_snap, raw_store=services.raw_store, author=author, now=now
            )
        if new_domain is not None:
            device.domain = _stored_domain(new_domain)
            _forget_domain_details(session, device)
            add_note(session, device, f"Domain changed to {device.domain}.", author=author, now=now)
            if domain_snap is not None:
                result = apply_domain(
                    session,
                    device,
                    domain_snap,
                    raw_store=services.raw_store,
                    author=author,
                    now=now,
                )
            else:
                add_note(
                    session, device, _why_no_domain_details(new_domain), author=author, now=now
                )
                sync_job(session, device, now=now)
        if changes.expires_at is not None or registrar is not None:
            apply_manual_registration(
                session,
                device,
                expires_at=changes.expires_at,
                registrar=registrar,
                author=author,
                now=now,
            )
    assert device.id is not None
    if update_details and new_source is None and new_domain is None:
        result = await update_audit(services, device.id, author=author)
    with reader(services.engine) as session:
        fresh = session.get(Device, device.id)
        assert fresh is not None
    return fresh, result


def _forget_domain_details(session: Session, device: Device) -> None:
    """What was learned about the previous domain says nothing about the new one."""
    previous = session.get(DomainDetailsRecord, device.id)
    if previous is not None:
        session.delete(previous)
        session.flush()
    device.expires_at = None
    device.last_updated_at = None
    device.last_update_error = None


def _changed_source(session: Session, device: Device, changes: DeviceChanges) -> SslSource | None:
    if changes.ssl_source is None:
        return None
    if device.category != DeviceCategory.SSL_CERTIFICATE:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            "Only SSL Certificate devices have an SSL Source.",
            field="sslSource",
        )
    source = _parse_source(changes.ssl_source)
    _ensure_retrieval_allowed(session, source)
    return source


def _changed_domain(device: Device, changes: DeviceChanges) -> DomainName | None:
    manual = changes.expires_at is not None or changes.registrar is not None
    if (changes.domain is not None or manual) and device.category != DeviceCategory.DOMAIN:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            "Only Domain devices have a domain and registration details.",
            field="domain" if changes.domain is not None else "expiresAt",
        )
    if changes.domain is None:
        return None
    domain = _parse_domain(changes.domain)
    return None if _stored_domain(domain) == device.domain else domain


async def set_device_active(
    services: Services, *, viewer: Viewer, device_id: int | None, active: bool
) -> Device:
    """Inactivating deletes the auto-updating job; activating creates it on the schedule."""
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


# --- forced updates and the tracking switch ----------------------------------------------------


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
    services.forced_updates.take(viewer.user_id, len(device_ids), what="forced updates")
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
            select(Device).where(col(Device.active), col(Device.category).in_(LOCKED_CATEGORIES))
        ).all()
        for device in candidates:
            sync_job(session, device, now=now)
