"""Editing a device: its fields, its source or domain (retrieved again), registration details
typed by a person, and activation."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import Session

from models import Device, DeviceCategory, DomainDetailsRecord, Organization
from models.db import reader, transaction
from models.inventory import DESCRIPTION_MAX, NAME_MAX
from tracking.core import clock
from tracking.core.errors import ErrorCode, ValidationError
from tracking.core.sources import DomainName, HostSource, SslSource
from tracking.core.text import clean_text, optional_name
from tracking.manage.access import Viewer
from tracking.manage.budget import spend_retrievals
from tracking.manage.device_rules import (
    check_category,
    domain_input,
    domain_retrieval_allowed,
    editable_device,
    ensure_retrieval_allowed,
    source_input,
    stored_domain,
    why_no_domain_details,
)
from tracking.manage.inventory import contract_for_device, product_for_device
from tracking.refresh.certificate import CertificateSnapshot, retrieve_certificate, set_source
from tracking.refresh.domain import DomainSnapshot, retrieve_domain
from tracking.refresh.pipeline import (
    AuditResult,
    ManualRegistration,
    Retrieved,
    apply_updates,
    audit_target,
    update_audit,
)
from tracking.refresh.records import add_note
from tracking.refresh.services import Services
from tracking.refresh.writes import sync_jobs


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


@dataclass(frozen=True)
class _Edit:
    """A validated updateDevice input."""

    changes: DeviceChanges
    name: str | None
    description: str | None
    registrar: str | None
    new_source: SslSource | None
    new_domain: DomainName | None
    retrieve_new_domain: bool
    retrieval_seconds: float | None = None

    @property
    def manual_registration(self) -> bool:
        return self.changes.expires_at is not None or self.registrar is not None


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
        edit = _validated(session, viewer, device, changes)
        details_only = update_details and edit.new_source is None and edit.new_domain is None
        if details_only:
            audit_target(session, device)  # refuse before saving anything
    retrievals = isinstance(edit.new_source, HostSource) + edit.retrieve_new_domain + details_only
    spend_retrievals(services, viewer, retrievals)
    started = time.perf_counter()
    cert_snap = await retrieve_certificate(services, edit.new_source) if edit.new_source else None
    domain_snap = None
    if edit.new_domain is not None and edit.retrieve_new_domain:
        domain_snap = await retrieve_domain(services, edit.new_domain.ascii)
    edit = replace(edit, retrieval_seconds=time.perf_counter() - started)

    with transaction(services.engine) as session:
        device = editable_device(session, viewer, device_id)
        result = _save(session, services, device, edit, cert_snap, domain_snap, author=viewer.name)
    assert device.id is not None
    if details_only:
        result = await update_audit(services, device.id, author=viewer.name)
    with reader(services.engine) as session:
        fresh = session.get(Device, device.id)
        assert fresh is not None
    return fresh, result


def _validated(session: Session, viewer: Viewer, device: Device, changes: DeviceChanges) -> _Edit:
    check_category(device, changes.category)
    name = optional_name(changes.name, field="name", max_length=NAME_MAX)
    if changes.name is not None and name is None:
        raise ValidationError(ErrorCode.REQUIRED, "name is required.", field="name")
    description = clean_text(changes.description, field="description", max_length=DESCRIPTION_MAX)
    registrar = optional_name(changes.registrar, field="registrar", max_length=NAME_MAX)
    organization = session.get(Organization, device.organization_id)
    assert organization is not None
    if changes.contract_id is not None:
        contract_for_device(session, viewer, changes.contract_id, organization)
    if changes.product_id is not None:
        product_for_device(session, changes.product_id, device.category)
    new_domain = _changed_domain(device, changes)
    return _Edit(
        changes=changes,
        name=name,
        description=description,
        registrar=registrar,
        new_source=_changed_source(session, device, changes),
        new_domain=new_domain,
        retrieve_new_domain=new_domain is not None
        and domain_retrieval_allowed(session, new_domain),
    )


def _save(
    session: Session,
    services: Services,
    device: Device,
    edit: _Edit,
    cert_snap: CertificateSnapshot | None,
    domain_snap: DomainSnapshot | None,
    *,
    author: str,
) -> AuditResult | None:
    """The edits and what was retrieved for them, in the caller's transaction."""
    assert device.id is not None
    now = clock.now()
    _set_fields(device, edit, now)
    session.add(device)
    found: list[Retrieved] = []
    if edit.new_source is not None and cert_snap is not None:
        set_source(device, edit.new_source)
        add_note(session, device.id, "SSL Source changed.", author=author, now=now)
        found.append(
            Retrieved(
                device.id,
                "SSL certificate",
                certificate=cert_snap,
                seconds=edit.retrieval_seconds,
            )
        )
    if edit.new_domain is not None:
        device.domain = stored_domain(edit.new_domain)
        _forget_domain_details(session, device)
        add_note(session, device.id, f"Domain changed to {device.domain}.", author=author, now=now)
        if domain_snap is not None:
            found.append(
                Retrieved(device.id, "Domain", domain=domain_snap, seconds=edit.retrieval_seconds)
            )
        else:
            text = why_no_domain_details(edit.new_domain)
            add_note(session, device.id, text, author=author, now=now)
            sync_jobs(session, [device.id], now=now)
    result = apply_updates(session, services, found, author=author, now=now)[0] if found else None
    if edit.manual_registration:
        entry = ManualRegistration(edit.changes.expires_at, edit.registrar)
        manual = [Retrieved(device.id, "Domain", manual=entry)]
        apply_updates(session, services, manual, author=author, now=now)
    return result


def _set_fields(device: Device, edit: _Edit, now: datetime) -> None:
    changes = edit.changes
    if edit.name is not None:
        device.name = edit.name
    if changes.description is not None:
        device.description = edit.description
    if changes.contract_id is not None:
        device.contract_id = changes.contract_id
    if changes.product_id is not None:
        device.product_id = changes.product_id
    device.modified_at = now


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
    source = source_input(changes.ssl_source)
    ensure_retrieval_allowed(session, source)
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
    domain = domain_input(changes.domain)
    return None if stored_domain(domain) == device.domain else domain


async def set_device_active(
    services: Services, *, viewer: Viewer, device_id: int | None, active: bool
) -> Device:
    """Inactivating deletes the auto-updating job; activating creates it on the schedule."""
    now = clock.now()
    with transaction(services.engine) as session:
        device = editable_device(session, viewer, device_id)
        assert device.id is not None
        if device.active != active:
            device.active = active
            device.modified_at = now
            session.add(device)
            verb = "activated" if active else "inactivated"
            add_note(
                session, device.id, f"Device {verb} by {viewer.name}.", author=viewer.name, now=now
            )
            sync_jobs(session, [device.id], now=now)
        return device
