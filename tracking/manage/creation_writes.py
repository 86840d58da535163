"""Saving created devices: each device, its first audit (and a domain's child SSL Certificate
device) in the caller's transaction, several devices in one batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models import Device, DeviceCategory, Organization
from models.inventory import NAME_MAX
from tracking.core.sources import DomainName, HostSource, SslSource
from tracking.manage.device_rules import stored_domain, why_no_domain_details
from tracking.manage.inventory import product_for_device
from tracking.refresh.certificate import CertificateSnapshot, set_source
from tracking.refresh.domain import DomainSnapshot
from tracking.refresh.pipeline import Retrieved, apply_updates
from tracking.refresh.records import add_note, add_notes
from tracking.refresh.services import Services
from tracking.refresh.writes import sync_jobs


@dataclass(frozen=True)
class ValidNewDevice:
    """A createDevice input that passed validation."""

    category: DeviceCategory
    organization: Organization
    contract_id: int | None
    product_id: int
    name: str | None
    description: str | None
    active: bool
    create_ssl_certificate: bool
    check_all_addresses: bool = False
    source: SslSource | None = None
    domain: DomainName | None = None
    retrieve_domain: bool = False

    @property
    def reaches_network(self) -> bool:
        return isinstance(self.source, HostSource) or self.retrieve_domain


@dataclass(frozen=True)
class Creation:
    """A validated new device and what was retrieved for it."""

    valid: ValidNewDevice
    certificate: CertificateSnapshot | None = None
    domain: DomainSnapshot | None = None
    child: tuple[HostSource, CertificateSnapshot] | str | None = None  # or why none was found
    seconds: float | None = None  # time spent retrieving


def save_creations(
    session: Session,
    services: Services,
    creations: Sequence[Creation],
    *,
    author: str,
    now: datetime,
) -> list[Device]:
    """Insert the devices, their children and notes, then their first audits as one batch of
    the update pipeline; the devices as stored (read again, in one query)."""
    devices = _insert_devices(session, creations, author=author, now=now)
    found: list[Retrieved] = []
    children: dict[int, Device] = {}
    for creation, device in zip(creations, devices, strict=True):
        assert device.id is not None
        if creation.certificate is not None:
            found.append(
                Retrieved(
                    device.id,
                    "SSL certificate",
                    certificate=creation.certificate,
                    seconds=creation.seconds,
                )
            )
        if creation.domain is not None:
            found.append(
                Retrieved(device.id, "Domain", domain=creation.domain, seconds=creation.seconds)
            )
        if isinstance(creation.child, tuple):
            source, certificate = creation.child
            child = children[device.id] = _insert_child(
                session, device, source, author=author, now=now
            )
            assert child.id is not None
            found.append(Retrieved(child.id, "SSL certificate", certificate=certificate))
    apply_updates(session, services, found, author=author, now=now)
    _after_first_audits(session, creations, devices, children, author=author, now=now)
    ids = [d.id for d in devices]
    fresh = session.exec(
        select(Device).where(col(Device.id).in_(ids)).execution_options(populate_existing=True)
    ).all()
    by_id = {d.id: d for d in fresh}
    return [by_id[i] for i in ids]


def _after_first_audits(
    session: Session,
    creations: Sequence[Creation],
    devices: Sequence[Device],
    children: dict[int, Device],
    *,
    author: str,
    now: datetime,
) -> None:
    """What a domain's note says of its certificate; the jobs of devices not retrieved."""
    unretrieved = []
    for creation, device in zip(creations, devices, strict=True):
        assert device.id is not None
        child = children.get(device.id)
        if child is not None:
            text = f"SSL Certificate device created for the certificate served by {child.name}."
            add_note(session, device.id, text, author=author, now=now)
        elif isinstance(creation.child, str):
            text = f"No SSL certificate was found for the domain ({creation.child})."
            add_note(session, device.id, text, author=author, now=now)
        if creation.certificate is None and creation.domain is None:
            if creation.valid.domain is not None:
                text = why_no_domain_details(creation.valid.domain)
                add_note(session, device.id, text, author=author, now=now)
            unretrieved.append(device.id)
    if unretrieved:
        sync_jobs(session, unretrieved, now=now)


def _insert_devices(
    session: Session, creations: Sequence[Creation], *, author: str, now: datetime
) -> list[Device]:
    """The devices in one flush (one INSERT per shape of row), then their "created" notes in
    one statement: two round trips for a batch, not two per device."""
    devices = [_new_device(creation, now=now) for creation in creations]
    session.add_all(devices)
    session.flush()
    ids = [device.id for device in devices if device.id is not None]
    assert len(ids) == len(devices)  # the flush gave each its id
    add_notes(session, ids, f"Device created by {author}.", author=author, now=now)
    return devices


def _new_device(creation: Creation, *, now: datetime) -> Device:
    valid = creation.valid
    device = Device(
        category=valid.category,
        name=valid.name or _default_name(valid, creation.certificate),
        description=valid.description,
        active=valid.active,
        organization_id=valid.organization.id,  # type: ignore[arg-type]
        contract_id=valid.contract_id,
        product_id=valid.product_id,
        created_at=now,
        modified_at=now,
        check_all_addresses=valid.check_all_addresses,
    )
    if valid.source is not None:
        set_source(device, valid.source)
    if valid.domain is not None:
        device.domain = stored_domain(valid.domain)
    return device


def _default_name(valid: ValidNewDevice, snap: CertificateSnapshot | None) -> str:
    if isinstance(valid.source, HostSource):
        return valid.source.display[:NAME_MAX]
    if snap is not None:
        return (snap.details.common_name or snap.details.fingerprint_sha256)[:NAME_MAX]
    assert valid.domain is not None
    unicode = valid.domain.unicode
    return (f"*.{unicode}" if valid.domain.is_wildcard else unicode)[:NAME_MAX]


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
