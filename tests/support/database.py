"""A fresh database for each test: a SQLite file, or a new PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)
from models.db import create_engine


@contextmanager
def fresh_database(server_url: str | None, tmp_path: Path) -> Iterator[Engine]:
    """``server_url`` None: SQLite under ``tmp_path``. Otherwise a PostgreSQL server URL whose
    database is used only to create (and afterwards drop) a uniquely named test database."""
    if server_url is None:
        engine = create_engine(f"sqlite:///{tmp_path / 'dstrack.sqlite3'}")
        SQLModel.metadata.create_all(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    name = f"dstrack_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(sa.engine.make_url(server_url).set(database=name).render_as_string(False))
    try:
        SQLModel.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
