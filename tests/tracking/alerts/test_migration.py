"""Migration 0006: devices that existed before are looked at by the first expiry sweep."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from models.db import alembic_config, create_engine, migrate


def test_existing_devices_with_an_expiry_are_due_for_the_first_sweep(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(url), "0004")
    engine = create_engine(url)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        stood = sa.MetaData()
        stood.reflect(connection, only=["organizations", "products", "devices"])
        tables = stood.tables
        connection.execute(
            tables["organizations"].insert(),
            {"id": 1, "name": "o", "type": "CUSTOMER", "created_at": created},
        )
        connection.execute(
            tables["products"].insert(),
            {"id": 1, "name": "p", "is_system": False, "created_at": created},
        )
        for device_id, expires in ((1, datetime(2026, 2, 1)), (2, None)):
            connection.execute(
                tables["devices"].insert(),
                {
                    "id": device_id,
                    "category": "SSL_CERTIFICATE",
                    "name": "d",
                    "active": True,
                    "organization_id": 1,
                    "product_id": 1,
                    "expires_at": expires,
                    "created_at": created.replace(tzinfo=None),
                    "modified_at": created.replace(tzinfo=None),
                },
            )
    migrate(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, alerts_muted, expiry_alert_due_at FROM devices ORDER BY id")
        ).all()
    engine.dispose()
    assert [(r[0], bool(r[1]), r[2] is not None) for r in rows] == [
        (1, False, True),
        (2, False, False),
    ]
