"""Creating a device: validation, the first retrieval, and everything saved in one transaction
(a domain's child SSL Certificate device included)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import Session

from models import Device, DeviceCategory, Organization
from models.db import reader, transaction
from models.inventory import DESCRIPTION_MAX, NAME_MAX
from tracking.core import clock
from tracking.core.errors import ErrorCode, ValidationError
from tracking.core.sources import DomainName, HostSource, SslSource
from tracking.core.text import clean_text, optional_name
from tracking.manage.access import Viewer
from tracking.manage.budget import spend_retrievals
from tracking.manage.device_rules import (
    domain_input,
    domain_retrieval_allowed,
    ensure_retrieval_allowed,
    source_input,
    stored_domain,
    why_no_domain_details,
)
from tracking.manage.inventory import contract_for_device, product_for_device, visible_organization
from tracking.refresh.certificate import CertificateSnapshot, retrieve_certificate, set_source
from tracking.refresh.domain import DomainSnapshot, find_domain_certificate, retrieve_domain
from tracking.refresh.pipeline import Retrieved, apply_updates
from tracking.refresh.records import add_note
from tracking.refresh.services import Services
from tracking.refresh.writes import sync_jobs


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
class _Plan:
    """A validated createDevice input."""

    organization: Organization
    product_id: int
    name: str | None
    description: str | None
    source: SslSource | None = None
    domain: DomainName | None = None
    retrieve_domain: bool = False


def _validated(services: Services, viewer: Viewer, new: NewDevice) -> _Plan:
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
            source = source_input(new.ssl_source)
            ensure_retrieval_allowed(session, source)
            plan = replace(plan, source=source)
        elif new.category == DeviceCategory.DOMAIN:
            domain = domain_input(new.domain)
            retrieve = domain_retrieval_allowed(session, domain)
            plan = replace(plan, domain=domain, retrieve_domain=retrieve)
    return plan


async def create_device(services: Services, *, viewer: Viewer, new: NewDevice) -> Device:
    """Validate, retrieve what the outside world says, then save it all in one transaction.

    An SSL source that fails validation or retrieval saves nothing. A well-formed domain is
    saved whatever its look-ups give; the failures are recorded on it.
    """
    plan = _validated(services, viewer, new)
    reaches_network = isinstance(plan.source, HostSource) or plan.retrieve_domain
    spend_retrievals(services, viewer, 1 if reaches_network else 0)
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
        device = _insert_device(session, new, plan, cert_snap, now=now)
        assert device.id is not None
        add_note(session, device.id, f"Device created by {author}.", author=author, now=now)
        if cert_snap is not None:
            found = [Retrieved(device.id, "SSL certificate", certificate=cert_snap)]
            apply_updates(session, services, found, author=author, now=now)
        elif domain_snap is not None:
            _save_domain(session, services, device, domain_snap, child, author=author, now=now)
        else:
            if plan.domain is not None:
                text = why_no_domain_details(plan.domain)
                add_note(session, device.id, text, author=author, now=now)
            sync_jobs(session, [device.id], now=now)
        session.refresh(device)
        return device


def _insert_device(
    session: Session,
    new: NewDevice,
    plan: _Plan,
    snap: CertificateSnapshot | None,
    *,
    now: datetime,
) -> Device:
    device = Device(
        category=new.category,
        name=plan.name or _default_name(plan, snap),
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
        device.domain = stored_domain(plan.domain)
    session.add(device)
    session.flush()
    return device


def _save_domain(
    session: Session,
    services: Services,
    device: Device,
    snap: DomainSnapshot,
    child: tuple[HostSource, CertificateSnapshot] | str | None,
    *,
    author: str,
    now: datetime,
) -> None:
    """The domain's first audit and, when it serves a certificate, its child SSL Certificate
    device with its own, in one batch."""
    assert device.id is not None
    found = [Retrieved(device.id, "Domain", domain=snap)]
    child_device = None
    if isinstance(child, tuple):
        source, certificate = child
        child_device = _insert_child(session, device, source, author=author, now=now)
        assert child_device.id is not None
        found.append(Retrieved(child_device.id, "SSL certificate", certificate=certificate))
    apply_updates(session, services, found, author=author, now=now)
    if child_device is not None:
        shown = child_device.name
        text = f"SSL Certificate device created for the certificate served by {shown}."
    elif child is not None:
        text = f"No SSL certificate was found for the domain ({child})."
    else:
        return
    add_note(session, device.id, text, author=author, now=now)


def _default_name(plan: _Plan, snap: CertificateSnapshot | None) -> str:
    if isinstance(plan.source, HostSource):
        return plan.source.display[:NAME_MAX]
    if snap is not None:
        return (snap.details.common_name or snap.details.fingerprint_sha256)[:NAME_MAX]
    assert plan.domain is not None
    unicode = plan.domain.unicode
    return (f"*.{unicode}" if plan.domain.is_wildcard else unicode)[:NAME_MAX]


def _insert_child(
    session: Session, domain_device: Device, source: HostSource, *, author: str, now: datetime
) -> Device:
    """The SSL Certificate device for the certificate the domain serves, as its child."""
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
    assert child.id is not None
    text = f"Device created by {author} with the domain {domain_device.name}."
    add_note(session, child.id, text, author=author, now=now)
    return child
