"""The checks of an import row that need no network: organization and contract by name,
category, source syntax, and whether the device exists already.

A chunk of rows costs a few queries in all (organizations, contracts, the switch, existing
sources), never one per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import Contract, DeviceCategory, Organization, SslSourceKind
from models.db import reader
from models.inventory import DESCRIPTION_MAX, NAME_MAX
from models.tables import DEVICES, SSL_DETAILS
from tracking.core.csvfiles import CsvProblem, CsvRow
from tracking.core.errors import DstrackError, ErrorCode, ValidationError, not_found
from tracking.core.sources import PemSource, parse_domain, parse_ssl_source
from tracking.core.text import clean_text, optional_name
from tracking.manage.access import Viewer
from tracking.manage.device_rules import stored_domain
from tracking.manage.devices import NewDevice
from tracking.refresh.switch import tracking_enabled

# (organization id, category, normalized source): the same device, whatever the spelling.
# Normalized: a domain's registrable A-label form ("*.x" for a wildcard), a host's
# ("host", name, port), a PEM certificate's SHA-256 fingerprint.
SourceKey = tuple[int, str, tuple[str, ...]]

IMPORTED_CATEGORIES = (DeviceCategory.DOMAIN, DeviceCategory.SSL_CERTIFICATE)
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
_IN_LIST = 500  # values per IN (...) list


@dataclass(frozen=True)
class Checked:
    """A row that passed every check: what ``create_device`` is to be given."""

    row: int
    key: SourceKey
    new: NewDevice
    exists: bool = False


def _category(text: str | None) -> DeviceCategory:
    if text is None:
        raise ValidationError(ErrorCode.REQUIRED, "category is required.", field="category")
    name = text.upper().replace(" ", "_").replace("-", "_")
    if name not in DeviceCategory.__members__ or DeviceCategory[name] not in IMPORTED_CATEGORIES:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f"category must be DOMAIN or SSL_CERTIFICATE, not {text!r}.",
            field="category",
        )
    return DeviceCategory[name]


def _active(text: str | None) -> bool:
    if text is None or text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValidationError(
        ErrorCode.INVALID_INPUT, f"active must be true or false, not {text!r}.", field="active"
    )


def _source_key(category: DeviceCategory, text: str | None) -> tuple[str, ...]:
    """The normalized source; raises the errors ``createDevice`` gives for its syntax."""
    if text is None:
        raise ValidationError(ErrorCode.REQUIRED, "source is required.", field="source")
    if category == DeviceCategory.DOMAIN:
        return ("domain", stored_domain(parse_domain(text)))
    source = parse_ssl_source(text)
    if isinstance(source, PemSource):
        return ("pem", _fingerprint(source))
    return ("host", source.host, str(source.port))


def _fingerprint(source: PemSource) -> str:
    """As ``SslDetails.fingerprintSha256`` shows it: uppercase hex pairs joined by ``:``."""
    return source.certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def _chunks(values: Iterable[Any]) -> list[list[Any]]:
    ordered = sorted(set(values))
    return [ordered[i : i + _IN_LIST] for i in range(0, len(ordered), _IN_LIST)]


class RowChecker:
    """Checks the rows of one chunk against what the database holds now."""

    def __init__(self, engine: Engine, viewer: Viewer) -> None:
        self.engine = engine
        self.viewer = viewer
        self.organizations: dict[str, list[Organization]] = defaultdict(list)
        self.contracts: dict[tuple[int, str], list[Contract]] = defaultdict(list)
        self.tracking = True

    def check(self, rows: Sequence[CsvRow]) -> list[Checked | CsvProblem]:
        """Each row checked, in order; ``exists`` set where the device is there already."""
        with reader(self.engine) as session:
            self._load(session, rows)
            checked: list[Checked | CsvProblem] = []
            for row in rows:
                try:
                    checked.append(self._check(row))
                except DstrackError as error:
                    checked.append(CsvProblem(row.row, error.code.value, error.message))
            existing = _existing(session, [c.key for c in checked if isinstance(c, Checked)])
        return [
            Checked(c.row, c.key, c.new, exists=True)
            if isinstance(c, Checked) and c.key in existing
            else c
            for c in checked
        ]

    def _load(self, session: Session, rows: Sequence[CsvRow]) -> None:
        """The visible organizations named in the rows, their contracts named in the rows."""
        names = {name for row in rows if (name := row.text("organization"))}
        for chunk in _chunks(names):
            for org in session.exec(select(Organization).where(col(Organization.name).in_(chunk))):
                if self.viewer.may_view(org.type):
                    self.organizations[org.name].append(org)
        org_ids = {org.id for orgs in self.organizations.values() for org in orgs}
        contract_names = {name for row in rows if (name := row.text("contract"))}
        for chunk in _chunks(contract_names):
            query = select(Contract).where(
                col(Contract.name).in_(chunk), col(Contract.organization_id).in_(org_ids)
            )
            for contract in session.exec(query):
                self.contracts[(contract.organization_id, contract.name)].append(contract)
        self.tracking = tracking_enabled(session)

    def _organization(self, name: str | None) -> Organization:
        if name is None:
            raise ValidationError(
                ErrorCode.REQUIRED, "organization is required.", field="organization"
            )
        found = self.organizations.get(name, [])
        if not found:  # missing and not visible look the same
            raise not_found("organization", "Organization")
        if len(found) > 1:
            raise ValidationError(
                ErrorCode.INVALID_INPUT,
                f"Several organizations are named {name!r}; rename one to import into it.",
                field="organization",
            )
        return found[0]

    def _contract(self, organization: Organization, name: str | None) -> int | None:
        if name is None:
            return None
        assert organization.id is not None
        found = self.contracts.get((organization.id, name), [])
        if not found:
            raise not_found("contract", "Contract")
        if len(found) > 1:
            raise ValidationError(
                ErrorCode.INVALID_INPUT,
                f"The organization has several contracts named {name!r}.",
                field="contract",
            )
        return found[0].id

    def _check(self, row: CsvRow) -> Checked:
        organization = self._organization(row.text("organization"))
        if not self.viewer.may_add_devices(organization.type):
            raise ValidationError(
                ErrorCode.FORBIDDEN, "Your security level does not allow adding devices."
            )
        category = _category(row.text("category"))
        contract_id = self._contract(organization, row.text("contract"))
        name = optional_name(row.values["name"], field="name", max_length=NAME_MAX)
        description = clean_text(
            row.values["description"], field="description", max_length=DESCRIPTION_MAX
        )
        active = _active(row.text("active"))
        source = row.text("source")
        key = _source_key(category, source)
        if key[0] == "host" and not self.tracking:
            raise ValidationError(ErrorCode.TRACKING_DISABLED, field="source")
        assert organization.id is not None
        new = NewDevice(
            organization_id=organization.id,
            category=category,
            contract_id=contract_id,
            name=name,
            description=description,
            active=active,
            ssl_source=source if category == DeviceCategory.SSL_CERTIFICATE else None,
            domain=source if category == DeviceCategory.DOMAIN else None,
        )
        return Checked(row.row, (organization.id, category.value, key), new)


def _existing(session: Session, keys: Sequence[SourceKey]) -> set[SourceKey]:
    """Which of ``keys`` are devices already: one query per kind of source and IN list."""
    found: set[SourceKey] = set()
    by_kind: dict[str, list[SourceKey]] = defaultdict(list)
    for key in keys:
        by_kind[key[2][0]].append(key)
    org_ids = sorted({key[0] for key in keys})
    devices, details = DEVICES, SSL_DETAILS
    of_orgs = devices.c.organization_id.in_(org_ids)
    for chunk in _chunks(key[2][1] for key in by_kind["domain"]):
        query = sa.select(devices.c.organization_id, devices.c.domain).where(
            of_orgs, devices.c.category == DeviceCategory.DOMAIN, devices.c.domain.in_(chunk)
        )
        found.update(
            (o, DeviceCategory.DOMAIN.value, ("domain", d)) for o, d in session.execute(query)
        )
    for chunk in _chunks(key[2][1] for key in by_kind["host"]):
        query = sa.select(devices.c.organization_id, devices.c.ssl_host, devices.c.ssl_port).where(
            of_orgs,
            devices.c.category == DeviceCategory.SSL_CERTIFICATE,
            devices.c.ssl_source_kind == SslSourceKind.HOST,
            devices.c.ssl_host.in_(chunk),
        )
        found.update(
            (o, DeviceCategory.SSL_CERTIFICATE.value, ("host", h, str(p)))
            for o, h, p in session.execute(query)
        )
    for chunk in _chunks(key[2][1] for key in by_kind["pem"]):
        query = (
            sa.select(devices.c.organization_id, details.c.fingerprint_sha256)
            .join(details, details.c.device_id == devices.c.id)
            .where(
                of_orgs,
                devices.c.category == DeviceCategory.SSL_CERTIFICATE,
                devices.c.ssl_source_kind == SslSourceKind.PEM,
                details.c.fingerprint_sha256.in_(chunk),
            )
        )
        found.update(
            (o, DeviceCategory.SSL_CERTIFICATE.value, ("pem", f)) for o, f in session.execute(query)
        )
    return found & set(keys)
