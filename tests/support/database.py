"""A fresh database for each test: a SQLite file, or a clean PostgreSQL database.

On PostgreSQL one database per test process holds the schema; every table is truncated after
each test (creating a database per test would make the suite several times slower).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)
from models.db import create_engine

_shared: dict[str, Engine] = {}


@contextmanager
def fresh_database(server_url: str | None, tmp_path: Path) -> Iterator[Engine]:
    """``server_url`` None: SQLite under ``tmp_path``. Otherwise the URL of a PostgreSQL
    server whose database is only used to create (and at exit drop) the test database."""
    if server_url is None:
        engine = create_engine(f"sqlite:///{tmp_path / 'dstrack.sqlite3'}")
        SQLModel.metadata.create_all(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    engine = _shared.get(server_url) or _create_postgres_database(server_url)
    try:
        yield engine
    finally:
        engine.dispose()
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def _create_postgres_database(server_url: str) -> Engine:
    name = f"dstrack_test_{os.getpid()}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name)
    engine = create_engine(url.render_as_string(hide_password=False))
    SQLModel.metadata.create_all(engine)
    _shared[server_url] = engine

    def drop() -> None:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    atexit.register(drop)
    return engine
