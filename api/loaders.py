"""DataLoaders: one batched query per kind of object per request, never one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, select
from strawberry.dataloader import DataLoader

from models import (
    ActivityNote,
    Alert,
    AlertDelivery,
    Contract,
    Device,
    DomainDetailsRecord,
    NotificationChannel,
    Organization,
    Product,
    RawFile,
    SslDetailsRecord,
    UpdateJob,
)
from models.db import reader
from tracking.manage.alert_reads import newest_alerts

Row = TypeVar("Row", bound=SQLModel)


def _by_key(engine: Engine, model: type[Row], key: Any) -> Callable[[list[int]], Any]:
    """A batch function: rows of ``model`` whose ``key`` column is in the requested keys."""

    async def load(keys: list[int]) -> list[Row | None]:
        with reader(engine) as session:
            rows = session.exec(select(model).where(col(key).in_(set(keys)))).all()
        found = {getattr(row, key.key): row for row in rows}
        return [found.get(k) for k in keys]

    return load


def _grouped(engine: Engine, model: type[Row], key: Any, order: Any) -> Callable[[list[int]], Any]:
    """A batch function: for each key, the list of rows whose ``key`` column equals it."""

    async def load(keys: list[int]) -> list[list[Row]]:
        with reader(engine) as session:
            rows = session.exec(select(model).where(col(key).in_(set(keys))).order_by(order)).all()
        groups: dict[int, list[Row]] = defaultdict(list)
        for row in rows:
            groups[getattr(row, key.key)].append(row)
        return [groups.get(k, []) for k in keys]

    return load


def _newest_per_device(engine: Engine) -> Callable[[list[tuple[int, int]]], Any]:
    """Activity notes, newest first, the first N per device, in one windowed query."""

    async def load(keys: list[tuple[int, int]]) -> list[list[ActivityNote]]:
        limit = max(n for _, n in keys)
        ranked = (
            select(
                ActivityNote,
                sa.func.row_number()
                .over(
                    partition_by=col(ActivityNote.device_id), order_by=col(ActivityNote.id).desc()
                )
                .label("rank"),
            )
            .where(col(ActivityNote.device_id).in_({d for d, _ in keys}))
            .subquery()
        )
        notes = sa.orm.aliased(ActivityNote, ranked)
        query = select(notes).where(ranked.c.rank <= limit).order_by(ranked.c.rank)
        with reader(engine) as session:
            rows = session.exec(query).all()
        groups: dict[int, list[ActivityNote]] = defaultdict(list)
        for row in rows:
            groups[row.device_id].append(row)
        return [groups.get(device_id, [])[:n] for device_id, n in keys]

    return load


def _newest_alerts(engine: Engine) -> Callable[[list[tuple[int, int]]], Any]:
    """Alerts, newest first, the first N per device, in one windowed query."""

    async def load(keys: list[tuple[int, int]]) -> list[list[Alert]]:
        return newest_alerts(engine, keys)

    return load


class Loaders:
    """Created per request, so nothing is cached across requests or users."""

    def __init__(self, engine: Engine) -> None:
        self.organization = DataLoader(_by_key(engine, Organization, Organization.id))
        self.contract = DataLoader(_by_key(engine, Contract, Contract.id))
        self.product = DataLoader(_by_key(engine, Product, Product.id))
        self.device = DataLoader(_by_key(engine, Device, Device.id))
        self.ssl_details = DataLoader(_by_key(engine, SslDetailsRecord, SslDetailsRecord.device_id))
        self.domain_details = DataLoader(
            _by_key(engine, DomainDetailsRecord, DomainDetailsRecord.device_id)
        )
        self.update_job = DataLoader(_by_key(engine, UpdateJob, UpdateJob.device_id))
        self.children = DataLoader(_grouped(engine, Device, Device.parent_id, col(Device.id)))
        self.raw_files = DataLoader(
            _grouped(engine, RawFile, RawFile.device_id, col(RawFile.id).desc())
        )
        self.activity = DataLoader(_newest_per_device(engine))
        self.device_alerts = DataLoader(_newest_alerts(engine))
        self.alert_deliveries = DataLoader(
            _grouped(engine, AlertDelivery, AlertDelivery.alert_id, col(AlertDelivery.id))
        )
        self.channel = DataLoader(_by_key(engine, NotificationChannel, NotificationChannel.id))

    def prime_devices(self, devices: Iterable[Device]) -> None:
        for device in devices:
            if device.id is not None:
                self.device.prime(device.id, device)
