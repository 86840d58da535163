"""Creating devices: validation, the first retrieval, and everything saved in one transaction.

``create_device`` (the ``createDevice`` mutation) and ``create_devices`` (an import's rows)
are one path: validate each, spend the retrieval budget, retrieve concurrently, then write the
devices in batches with their first audits (a domain's child SSL Certificate device
included), as the update pipeline writes a batch of refreshes. A row that fails never takes
another with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlmodel import Session

from models import Device, DeviceCategory
from models.db import reader, transaction
from models.inventory import DESCRIPTION_MAX, NAME_MAX
from tracking.core import clock
from tracking.core.errors import DstrackError, ErrorCode, ValidationError
from tracking.core.text import clean_text, optional_name
from tracking.manage.access import Viewer
from tracking.manage.budget import spend_retrievals
from tracking.manage.creation_writes import Creation, ValidNewDevice, save_creations
from tracking.manage.device_rules import (
    check_addresses_input,
    domain_input,
    domain_retrieval_allowed,
    ensure_retrieval_allowed,
    source_input,
)
from tracking.manage.inventory import contract_for_device, product_for_device, visible_organization
from tracking.probes.ares import shared_channels
from tracking.refresh.certificate import retrieve_certificate
from tracking.refresh.domain import find_domain_certificate, retrieve_domain
from tracking.refresh.services import Services

log = logging.getLogger(__name__)

CONCURRENCY = 16  # retrievals in flight
BATCH = 64  # created devices written per transaction

Outcome = Device | BaseException  # the device as saved, or why it was not
Done = Callable[[int, Outcome], None]


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
    check_all_addresses: bool = False  # SSL_CERTIFICATE with a host: every address


async def create_device(services: Services, *, viewer: Viewer, new: NewDevice) -> Device:
    """Validate, retrieve what the outside world says, then save it all in one transaction.

    An SSL source that fails validation or retrieval saves nothing. A well-formed domain is
    saved whatever its look-ups give; the failures are recorded on it.
    """
    (outcome,) = await create_devices(services, viewer=viewer, news=[new])
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


async def create_devices(
    services: Services,
    *,
    viewer: Viewer,
    news: Sequence[NewDevice],
    on_done: Done | None = None,
) -> list[Outcome]:
    """Create each of ``news`` as :func:`create_device` would; outcomes in input order, and
    ``on_done(index, outcome)`` as each is known. A ``DstrackError`` outcome saved nothing."""
    outcomes: dict[int, Outcome] = {}

    def done(index: int, outcome: Outcome) -> None:
        outcomes[index] = outcome
        if on_done is not None:
            on_done(index, outcome)

    valid = _validate_all(services, viewer, news, done)
    _spend(services, viewer, valid, done)
    saver = _Saver(services, viewer.name, done)
    queue = iter(valid.items())

    async def worker() -> None:
        for index, item in queue:
            try:
                creation = await _retrieve(services, item)
            except DstrackError as error:
                done(index, error)
                continue
            saver.add(index, creation)

    with shared_channels():
        await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, len(valid)))))
    saver.flush()
    return [outcomes[i] for i in range(len(news))]


def _validate_all(
    services: Services, viewer: Viewer, news: Sequence[NewDevice], done: Done
) -> dict[int, ValidNewDevice]:
    valid: dict[int, ValidNewDevice] = {}
    products: _Products = {}  # a product is looked up once for all rows, not once per row
    with reader(services.engine) as session:  # one session: organizations are read once
        for index, new in enumerate(news):
            try:
                valid[index] = _validated(session, viewer, new, products)
            except DstrackError as error:
                done(index, error)
    return valid


def _spend(
    services: Services, viewer: Viewer, valid: dict[int, ValidNewDevice], done: Done
) -> None:
    """The retrievals of all at once; if the budget cannot take them all, each on its own."""
    networked = [index for index, item in valid.items() if item.reaches_network]
    try:
        spend_retrievals(services, viewer, len(networked))
        return
    except DstrackError as refused:
        if len(networked) == 1:
            done(networked[0], refused)
            del valid[networked[0]]
            return
    for index in networked:
        try:
            spend_retrievals(services, viewer, 1)
        except DstrackError as error:
            done(index, error)
            del valid[index]


_Products = dict[tuple[int | None, DeviceCategory], int]


def _validated(
    session: Session, viewer: Viewer, new: NewDevice, products: _Products
) -> ValidNewDevice:
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
    check_addresses_input(new.category, new.check_all_addresses)
    if new.domain is not None and new.category != DeviceCategory.DOMAIN:
        raise ValidationError(
            ErrorCode.INVALID_INPUT, "Only Domain devices have a domain.", field="domain"
        )
    organization = visible_organization(
        session, viewer, new.organization_id, field="organizationId"
    )
    if not viewer.may_add_devices(organization.type):
        raise ValidationError(
            ErrorCode.FORBIDDEN, "Your security level does not allow adding devices."
        )
    if new.contract_id is not None:
        contract_for_device(session, viewer, new.contract_id, organization)
    product_id = _product_id(session, new, products)
    source = domain = None
    if new.category == DeviceCategory.SSL_CERTIFICATE:
        source = source_input(new.ssl_source, all_addresses=new.check_all_addresses)
        ensure_retrieval_allowed(session, source)
    elif new.category == DeviceCategory.DOMAIN:
        domain = domain_input(new.domain)
    return ValidNewDevice(
        category=new.category,
        organization=organization,
        contract_id=new.contract_id,
        product_id=product_id,
        name=name,
        description=description,
        active=new.active,
        create_ssl_certificate=new.create_ssl_certificate,
        check_all_addresses=new.check_all_addresses,
        source=source,
        domain=domain,
        retrieve_domain=domain is not None and domain_retrieval_allowed(session, domain),
    )


def _product_id(session: Session, new: NewDevice, products: _Products) -> int:
    key = (new.product_id, new.category)
    if key not in products:
        product = product_for_device(session, new.product_id, new.category)
        assert product.id is not None
        products[key] = product.id
    return products[key]


async def _retrieve(services: Services, valid: ValidNewDevice) -> Creation:
    """What the outside world says, timed: raises for an SSL source that cannot be
    retrieved."""
    started = time.perf_counter()
    creation = await _ask(services, valid)
    return replace(creation, seconds=time.perf_counter() - started)


async def _ask(services: Services, valid: ValidNewDevice) -> Creation:
    if valid.source is not None:
        return Creation(valid, certificate=await retrieve_certificate(services, valid.source))
    if valid.domain is None or not valid.retrieve_domain:
        return Creation(valid)
    if not valid.create_ssl_certificate:
        return Creation(valid, domain=await retrieve_domain(services, valid.domain.ascii))
    domain, child = await asyncio.gather(
        retrieve_domain(services, valid.domain.ascii),
        find_domain_certificate(services, valid.domain.ascii),
    )
    return Creation(valid, domain=domain, child=child)


class _Saver:
    """Writes retrieved creations ``BATCH`` at a time; a batch that fails is written one by
    one, so one bad row never takes the others with it."""

    def __init__(self, services: Services, author: str, done: Done) -> None:
        self.services = services
        self.author = author
        self.done = done
        self.pending: list[tuple[int, Creation]] = []

    def add(self, index: int, creation: Creation) -> None:
        self.pending.append((index, creation))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if len(batch) > 1:
            try:
                saved = self._save([creation for _, creation in batch])
            except Exception:
                log.info("a batch of %d creations is saved one by one", len(batch), exc_info=True)
            else:
                for (index, _), device in zip(batch, saved, strict=True):
                    self.done(index, device)
                return
        for index, creation in batch:
            try:
                (device,) = self._save([creation])
            except Exception as error:  # saved nothing: one transaction
                self.done(index, error)
            else:
                self.done(index, device)

    def _save(self, creations: list[Creation]) -> list[Device]:
        with transaction(self.services.engine) as session:
            return save_creations(
                session, self.services, creations, author=self.author, now=clock.now()
            )
