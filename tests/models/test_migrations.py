"""The Alembic migrations build exactly the schema the SQLModel tables describe."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table on SQLModel.metadata)
from models.db import alembic_config, create_engine, migrate
from tests.fakes import pki

SERVER_URL = os.environ.get("DSTRACK_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgresql"] if SERVER_URL else ["sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database no table exists in: a SQLite file in directories still to be created, or
    (with DSTRACK_TEST_DATABASE_URL) a new PostgreSQL database, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'dir' / 'dstrack.sqlite3'}"
        return
    assert SERVER_URL is not None
    server_url = SERVER_URL
    name = f"dstrack_migrations_{os.getpid()}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(False)
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def _differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, SQLModel.metadata))


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _head(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_migrate_creates_every_table_of_the_models(url: str, engine: Engine) -> None:
    migrate(url)  # SQLite: the parent directories do not exist yet, migrate creates them
    assert _tables(engine) == set(SQLModel.metadata.tables)
    assert _revision(engine) == _head(url)


def test_the_migrated_schema_matches_the_models_exactly(url: str, engine: Engine) -> None:
    migrate(url)
    assert _differences(engine) == []


def test_indexes_and_foreign_keys_are_created(url: str, engine: Engine) -> None:
    migrate(url)
    inspector = sa.inspect(engine)
    for name, table in SQLModel.metadata.tables.items():
        expected_indexes = {index.name for index in table.indexes}
        assert {i["name"] for i in inspector.get_indexes(name)} >= expected_indexes, name
        expected_fks = {(fk.parent.name, fk.column.table.name) for fk in table.foreign_keys}
        found_fks = {
            (column, fk["referred_table"])
            for fk in inspector.get_foreign_keys(name)
            for column in fk["constrained_columns"]
        }
        assert found_fks == expected_fks, name


def test_migrating_twice_changes_nothing(url: str, engine: Engine) -> None:
    migrate(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO app_settings (key, value) VALUES ('tracking_enabled', 'false')")
        )
    before = sa.inspect(engine).get_table_names()
    migrate(url)
    engine.dispose()
    assert sa.inspect(engine).get_table_names() == before
    assert _revision(engine) == _head(url)
    with engine.connect() as connection:
        value = connection.execute(sa.text("SELECT value FROM app_settings")).scalar_one()
    assert value == "false"  # the data survived
    assert _differences(engine) == []


def test_downgrade_to_base_and_upgrade_again(url: str, engine: Engine) -> None:
    migrate(url)
    command.downgrade(alembic_config(url), "base")
    engine.dispose()
    assert _tables(engine) == set()
    assert _revision(engine) is None

    migrate(url)
    engine.dispose()
    assert _tables(engine) == set(SQLModel.metadata.tables)
    assert _differences(engine) == []


def test_the_migrated_database_works_with_the_app(url: str, engine: Engine) -> None:
    """Foreign keys are enforced on the migrated schema, as on the tests' create_all one."""
    migrate(url)
    with engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(
            sa.text(
                "INSERT INTO contracts (name, organization_id, created_at) "
                "VALUES ('orphan', 42, '2026-01-01 00:00:00')"
            )
        )


def test_there_is_a_single_head() -> None:
    config = alembic_config("sqlite://")
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def _details_row(engine: Engine, sans: list[str], chain_pem: str = "") -> None:
    """A device with an audit whose SANs are ``sans``, inserted as the tables stand (read from
    the database: later columns of the models do not exist yet)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        stood = sa.MetaData()
        stood.reflect(connection, only=["organizations", "products", "devices", "ssl_details"])
        tables = stood.tables
        connection.execute(
            tables["organizations"].insert(),
            {"id": 1, "name": "o", "type": "CUSTOMER", "created_at": now},
        )
        connection.execute(
            tables["products"].insert(),
            {"id": 1, "name": "p", "is_system": False, "created_at": now},
        )
        connection.execute(
            tables["devices"].insert(),
            {
                "id": 7,
                "category": "SSL_CERTIFICATE",
                "name": "d",
                "active": True,
                "organization_id": 1,
                "product_id": 1,
                "created_at": now,
                "modified_at": now,
            },
        )
        connection.execute(
            tables["ssl_details"].insert(),
            {
                "device_id": 7,
                "valid_from": now,
                "valid_until": now,
                "serial_number": "01",
                "signature_algorithm": "sha256RSA",
                "fingerprint_sha256": "AA",
                "chain_pem": chain_pem,
                "chain_length": 1,
                "trusted": False,
                "retrieved_at": now,
                "subject_alternative_names": sans,
            },
        )


def _sans(engine: Engine) -> list[str]:
    table = SQLModel.metadata.tables["ssl_details"]
    with engine.connect() as connection:
        sans: list[str] = connection.execute(
            sa.select(table.c.subject_alternative_names)
        ).scalar_one()
    return sans


def test_0003_writes_stored_ipv6_sans_as_openssl_prints_them(url: str, engine: Engine) -> None:
    config = alembic_config(url)
    command.upgrade(config, "0002")
    _details_row(engine, ["www.example.com", "2001:db8::1", "192.0.2.1", "::ffff:1.2.3.4"])

    command.upgrade(config, "0003")
    assert _sans(engine) == [
        "www.example.com",
        "2001:DB8:0:0:0:0:0:1",
        "192.0.2.1",
        "0:0:0:0:0:FFFF:102:304",
    ]

    command.downgrade(config, "0002")
    assert _sans(engine) == ["www.example.com", "2001:db8::1", "192.0.2.1", "::ffff:102:304"]


def test_0003_keeps_a_dns_name_that_reads_like_ipv6(url: str, engine: Engine) -> None:
    """With the stored leaf at hand, only its IP address SANs are rewritten."""
    leaf = pki.issue(
        pki.name("odd.example.com"),
        dns_names=["odd.example.com", "2001:db8::2"],  # misissued: IPv6 text as a DNS name
        ip_addresses=["2001:db8::1"],
    )
    config = alembic_config(url)
    command.upgrade(config, "0002")
    _details_row(engine, ["odd.example.com", "2001:db8::2", "2001:db8::1"], chain_pem=leaf.pem)

    command.upgrade(config, "0003")
    assert _sans(engine) == ["odd.example.com", "2001:db8::2", "2001:DB8:0:0:0:0:0:1"]
    command.downgrade(config, "0002")
    assert _sans(engine) == ["odd.example.com", "2001:db8::2", "2001:db8::1"]


def test_0005_keeps_the_tokens_there_unmarked(url: str, engine: Engine) -> None:
    """Tokens stored before the column existed keep working and count as made by hand."""
    config = alembic_config(url)
    before = ScriptDirectory.from_config(config).get_revision("0005").down_revision
    assert isinstance(before, str)
    command.upgrade(config, before)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO security_levels (id, name, crm_access, view_organization_types, "
                "can_add_devices, can_edit_devices, can_delete_devices, is_admin) "
                "VALUES (1, 'Administrator', true, '[]', true, true, true, true)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO users (id, name, security_level_id, created_at) "
                "VALUES (1, 'admin', 1, :now)"
            ),
            {"now": now},
        )
        connection.execute(
            sa.text(
                "INSERT INTO api_tokens (user_id, token_sha256, created_at) "
                "VALUES (1, :digest, :now)"
            ),
            {"digest": "a" * 64, "now": now},
        )

    command.upgrade(config, "0005")
    engine.dispose()
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT token_sha256, from_environment, revoked_at FROM api_tokens")
        ).all()
    assert [(digest, bool(marked), revoked) for digest, marked, revoked in rows] == [
        ("a" * 64, False, None)
    ]

    command.downgrade(config, before)
    engine.dispose()
    columns = {c["name"] for c in sa.inspect(engine).get_columns("api_tokens")}
    assert "from_environment" not in columns
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM api_tokens")).scalar_one() == 1


def test_0011_reads_key_facts_and_the_one_endpoint_of_stored_audits(
    url: str, engine: Engine
) -> None:
    """Audits stored before 0011 get their key type and size from the stored leaf (no change
    reported at the next refresh) and, for a host, the address they were retrieved from."""
    leaf = pki.issue(pki.name("ec.example"), key_kind="ec384", dns_names=["ec.example"])
    config = alembic_config(url)
    command.upgrade(config, "0010")
    _details_row(engine, ["ec.example"], chain_pem=leaf.pem)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE devices SET ssl_port = 8443, ssl_host = 'ec.example'"))
        connection.execute(
            sa.text("UPDATE ssl_details SET address = '192.0.2.9', protocol = 'TLSv1.3'")
        )

    command.upgrade(config, "0011")
    details = SQLModel.metadata.tables["ssl_details"]
    devices = SQLModel.metadata.tables["devices"]
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(details.c.key_type, details.c.key_size, details.c.cipher, details.c.endpoints)
        ).one()
        check_all = connection.execute(sa.select(devices.c.check_all_addresses)).scalar_one()
    assert (row.key_type, row.key_size, row.cipher) == ("EC", 384, None)
    assert row.endpoints == [
        {
            "address": "192.0.2.9",
            "port": 8443,
            "fingerprint_sha256": "AA",
            "valid_until": "2026-01-01T00:00:00+00:00",
            "tls_version": "TLSv1.3",
            "cipher": None,
            "error": None,
        }
    ]
    assert check_all is False

    command.downgrade(config, "0010")
    engine.dispose()
    assert "key_type" not in {c["name"] for c in sa.inspect(engine).get_columns("ssl_details")}


def test_a_database_in_use_upgrades_to_the_latest_schema(url: str, engine: Engine) -> None:
    """Upgrades run on databases that hold devices, audits, notes and jobs, not only on empty
    ones: a migration that rebuilds a table (as SQLite's batch mode may) must keep them."""
    config = alembic_config(url)
    command.upgrade(config, "0003")
    leaf = pki.test_ca().leaf("in-use.example")
    _details_row(engine, ["in-use.example"], chain_pem=leaf.pem)
    now = datetime(2026, 1, 2, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE devices SET ssl_source_kind = 'HOST', ssl_host = 'in-use.example', "
                "ssl_port = 443, expires_at = :now WHERE id = 7"
            ),
            {"now": now},
        )
        connection.execute(
            sa.text(
                "INSERT INTO update_jobs (device_id, due_at, interval_seconds, reason) "
                "VALUES (7, :now, 3600, 'test')"
            ),
            {"now": now},
        )
        connection.execute(
            sa.text(
                "INSERT INTO activity_notes (device_id, created_at, author, text) "
                "VALUES (7, :now, 'admin', 'kept')"
            ),
            {"now": now},
        )

    command.upgrade(config, "head")

    with engine.connect() as connection:
        device = connection.execute(
            sa.text("SELECT name, ssl_host, ssl_protocol, consecutive_failures FROM devices")
        ).one()
        assert tuple(device) == ("d", "in-use.example", "tls", 0)
        details = connection.execute(sa.text("SELECT device_id, chain_pem FROM ssl_details")).one()
        assert tuple(details) == (7, leaf.pem)
        assert connection.execute(sa.text("SELECT text FROM activity_notes")).scalar() == "kept"
        assert connection.execute(sa.text("SELECT device_id FROM update_jobs")).scalar() == 7
    assert _differences(engine) == []

    command.downgrade(config, "0003")  # and back, keeping what was there
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT ssl_host FROM devices")).scalar() == (
            "in-use.example"
        )
        assert connection.execute(sa.text("SELECT text FROM activity_notes")).scalar() == "kept"
