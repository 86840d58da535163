"""Exporting devices as CSV: the devices a viewer may see, streamed in batches.

One query per batch (keyset by device id, plain rows, the organization and the current SSL and
domain details joined in), so an export of any size runs in bounded memory with no query per
device. Text cells are neutralised against spreadsheet formulas; numbers stay numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models import DeviceCategory
from models.tables import DEVICES as _DEVICES
from models.tables import DOMAIN_DETAILS as _DOMAIN
from models.tables import ORGANIZATIONS as _ORGANIZATIONS
from models.tables import SSL_DETAILS as _SSL
from tracking.core import clock
from tracking.core.csvfiles import Cell, csv_lines, safe_text
from tracking.core.errors import ErrorCode, ValidationError, not_found
from tracking.core.ids import decode_pk, encode_id
from tracking.core.sources import DEFAULT_PORT, TLS_AT_ONCE, HostSource
from tracking.manage.access import Viewer
from tracking.manage.queries import visible_organization

HEADER = (
    "id",
    "organization",
    "name",
    "category",
    "source",
    "common_name",
    "issued_by",
    "valid_until",
    "days_left",
    "chain_trusted",
    "hostname_matches",
    "domain",
    "registrar",
    "expires_at",
    "last_updated_at",
    "last_update_error",
)
PARAMETERS = ("organizationId", "category", "expiringWithinDays")
BATCH_SIZE = 1_000
MAX_DAYS = 36_500


@dataclass(frozen=True)
class ExportFilter:
    organization_id: int | None = None
    category: DeviceCategory | None = None
    expiring_within_days: int | None = None


def _bad(parameter: str, message: str) -> ValidationError:
    return ValidationError(ErrorCode.INVALID_INPUT, message, field=parameter)


def export_filter(engine: Engine, viewer: Viewer, parameters: Mapping[str, str]) -> ExportFilter:
    """The filter named by query parameters (``organizationId``, ``category``,
    ``expiringWithinDays``; blank means absent); a clear ``ValidationError`` otherwise.

    An organization the viewer may not see is NOT_FOUND, as one that does not exist.
    """
    if unknown := sorted(set(parameters) - set(PARAMETERS)):
        raise _bad(
            unknown[0],
            f"Unknown parameter {unknown[0]!r}: the parameters are {', '.join(PARAMETERS)}.",
        )
    given = {name: value.strip() for name, value in parameters.items() if value.strip()}
    organization_id = None
    if "organizationId" in given:
        organization_id = decode_pk(given["organizationId"], "Organization")
        if organization_id is None:
            raise _bad("organizationId", "organizationId is not the ID of an organization.")
        if visible_organization(engine, viewer, organization_id) is None:
            raise not_found("organizationId", "Organization")
    category = None
    if "category" in given:
        name = given["category"].upper()
        if name not in DeviceCategory.__members__:
            raise _bad(
                "category",
                f"category must be one of {', '.join(DeviceCategory)}, not {given['category']!r}.",
            )
        category = DeviceCategory[name]
    days = None
    if "expiringWithinDays" in given:
        text = given["expiringWithinDays"]
        if not (text.isascii() and text.isdigit() and int(text) <= MAX_DAYS):
            raise _bad(
                "expiringWithinDays",
                f"expiringWithinDays must be a whole number of days from 0 to {MAX_DAYS}, "
                f"not {text!r}.",
            )
        days = int(text)
    return ExportFilter(organization_id, category, days)


class DeviceExport:
    """The CSV text of an export, batch by batch; ``rows`` counts the devices written."""

    def __init__(
        self,
        engine: Engine,
        viewer: Viewer,
        filters: ExportFilter,
        *,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.engine = engine
        self.viewer = viewer
        self.filters = filters
        self.batch_size = batch_size
        self.rows = 0

    def chunks(self) -> Iterator[str]:
        """The header line, then one chunk of lines per batch of devices (by id)."""
        yield csv_lines([HEADER])
        now = clock.now()
        after = 0
        while True:
            with self.engine.connect() as connection:
                batch = connection.execute(self._query(now, after)).all()
            more = len(batch) > self.batch_size  # one row beyond the batch: no empty last query
            batch = batch[: self.batch_size]
            if batch:
                self.rows += len(batch)
                after = batch[-1].id
                yield csv_lines(_cells(row, now) for row in batch)
            if not more:
                return

    def _query(self, now: datetime, after: int) -> sa.Select[Any]:
        query = (
            sa.select(
                _DEVICES.c.id,
                _ORGANIZATIONS.c.name.label("organization"),
                _DEVICES.c.name,
                _DEVICES.c.category,
                _DEVICES.c.ssl_source_kind,
                _DEVICES.c.ssl_host,
                _DEVICES.c.ssl_port,
                _DEVICES.c.ssl_protocol,
                _DEVICES.c.ssl_pem,
                _DEVICES.c.domain,
                _SSL.c.common_name,
                _SSL.c.issued_by,
                _SSL.c.valid_until,
                _SSL.c.trusted,
                _SSL.c.hostname_matches,
                _DOMAIN.c.registrar,
                _DEVICES.c.expires_at,
                _DEVICES.c.last_updated_at,
                _DEVICES.c.last_update_error,
            )
            .select_from(
                _DEVICES.join(_ORGANIZATIONS, _ORGANIZATIONS.c.id == _DEVICES.c.organization_id)
                .outerjoin(_SSL, _SSL.c.device_id == _DEVICES.c.id)
                .outerjoin(_DOMAIN, _DOMAIN.c.device_id == _DEVICES.c.id)
            )
            .where(_DEVICES.c.id > after)
            .order_by(_DEVICES.c.id)
            .limit(self.batch_size + 1)
        )
        types = self.viewer.visible_types  # the visibility rule of every read
        if types is not None:
            query = query.where(_ORGANIZATIONS.c.type.in_(sorted(types)))
        filters = self.filters
        if filters.organization_id is not None:
            query = query.where(_DEVICES.c.organization_id == filters.organization_id)
        if filters.category is not None:
            query = query.where(_DEVICES.c.category == filters.category)
        if filters.expiring_within_days is not None:
            horizon = now + timedelta(days=filters.expiring_within_days)
            query = query.where(_DEVICES.c.expires_at < horizon)
        return query


def _cells(row: sa.Row[Any], now: datetime) -> list[Cell]:
    is_domain = row.category == DeviceCategory.DOMAIN
    return [
        encode_id("Device", row.id),
        _text(row.organization),
        _text(row.name),
        _text(row.category),
        _text(_source(row)),
        _text(row.common_name),
        _text(row.issued_by),
        _time(row.valid_until),
        _days_left(row.expires_at, now),
        _flag(row.trusted),
        _flag(row.hostname_matches),
        _text(row.domain),
        _text(row.registrar),
        _time(row.expires_at) if is_domain else None,
        _time(row.last_updated_at),
        _text(row.last_update_error),
    ]


def _source(row: sa.Row[Any]) -> str | None:
    """The SSL Source as it can be typed again (``host``, ``host:port``, ``[v6]:port``,
    ``smtp://host``, the PEM) or the domain."""
    if row.ssl_pem is not None:
        return str(row.ssl_pem)
    if row.ssl_host is not None:  # smtp://host[:port] and the like keep their scheme
        protocol = row.ssl_protocol or TLS_AT_ONCE
        return HostSource(row.ssl_host, row.ssl_port or DEFAULT_PORT, protocol).typed
    return None if row.domain is None else str(row.domain)


def _text(value: str | None) -> str | None:
    return None if value is None else safe_text(str(value))


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _days_left(expires_at: datetime | None, now: datetime) -> int | None:
    """Whole days until the expiry, rounded down: negative once expired."""
    if expires_at is None:
        return None
    return math.floor((expires_at - now).total_seconds() / 86_400)
