"""The audit use case without the network: a scripted TLS probe, a real database and RAW store.

An update is probe -> decode -> diff -> store -> RAW file -> Activity note -> next update, and
what it learned is saved in one transaction: a failure half-way leaves the previous audit
exactly as it was and only records the error on the device.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, select

from models import (
    ActivityNote,
    Device,
    DeviceCategory,
    OrganizationType,
    RawFile,
    SslDetailsRecord,
    UpdateJob,
)
from models.db import reader, transaction
from tests.fakes import pki
from tests.fakes.tls_server import ServedCertificate, served
from tests.support.clock import Clock
from tracking.core import clock
from tracking.core.changes import Change
from tracking.core.clock import use_clock
from tracking.core.errors import DstrackError, ErrorCode, ProbeError
from tracking.core.settings import Settings
from tracking.manage import access, devices, inventory
from tracking.manage.access import Viewer
from tracking.probes.tls import TlsHandshake
from tracking.refresh import records
from tracking.refresh.events import UpdateBatch
from tracking.refresh.pipeline import (
    SSL_UPDATED_MESSAGE,
    AuditResult,
    result_message,
    update_audit,
    update_many,
)
from tracking.refresh.rawstore import STORAGE_FAILED_MESSAGE, RawStore, StorageError, StoredBlob
from tracking.refresh.services import Services
from tracking.refresh.switch import store_tracking_enabled
from tracking.wiring import build_services

T0 = pki.NOW
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
TOKEN = "audit-test-token"


def certificate(name: str, *, expires_in: timedelta, now: datetime = T0) -> ServedCertificate:
    ca = pki.test_ca()
    not_after = now + expires_in
    return served(
        ca.leaf(name, not_before=min(now, not_after) - 30 * DAY, not_after=not_after),
        ca.intermediate,
    )


class ScriptedTls:
    """A TLS probe answering, per host, with the chain (or the error) a test sets."""

    def __init__(self) -> None:
        self.serving: dict[str, ServedCertificate | Exception] = {}
        self.calls: list[str] = []
        self.delay = 0.0
        self.in_flight = 0
        self.most_in_flight = 0

    async def fetch_chain(self, host: str, port: int) -> TlsHandshake:
        self.calls.append(host)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        what = self.serving[host]
        if isinstance(what, Exception):
            raise what
        return TlsHandshake(
            host=host,
            port=port,
            address="192.0.2.10",
            server_name=host,
            chain_der=what.chain_der,
            protocol="TLSv1.3",
            cipher="TLS_AES_128_GCM_SHA256",
            retrieved_at=clock.now(),
        )


@dataclass
class Env:
    services: Services
    tls: ScriptedTls
    viewer: Viewer
    organization_id: int
    clock: Clock

    @property
    def engine(self) -> Engine:
        return self.services.engine

    async def device(
        self, host: str, cert: ServedCertificate | None = None, *, active: bool = True
    ) -> int:
        """A host-sourced SSL Certificate device (created through the use case)."""
        self.tls.serving[host] = cert or certificate(host, expires_in=60 * DAY)
        row = await devices.create_device(
            self.services,
            viewer=self.viewer,
            new=devices.NewDevice(
                organization_id=self.organization_id,
                category=DeviceCategory.SSL_CERTIFICATE,
                ssl_source=f"{host}:443",
                active=active,
            ),
        )
        assert row.id is not None
        return row.id


@pytest.fixture
def env(engine: Engine, tmp_path: Path) -> Iterator[Env]:
    settings = Settings(database_url=str(engine.url), data_dir=tmp_path / "data")
    services = build_services(settings, engine)
    services.roots_override = [pki.test_ca().root.cert]
    tls = ScriptedTls()
    services.tls = tls
    inventory.ensure_system_data(engine)
    access.ensure_admin_token(engine, TOKEN)
    viewer = access.authenticate(engine, TOKEN)
    assert viewer is not None
    frozen = Clock(T0)
    with use_clock(frozen):
        org = inventory.create_organization(
            engine, viewer=viewer, name="Acme", type=OrganizationType.CUSTOMER
        )
        assert org.id is not None
        yield Env(services, tls, viewer, org.id, frozen)


# --- what the database holds about a device ------------------------------------------------------


def _dump(row: SQLModel | None) -> dict[str, Any] | None:
    """The row's columns (model_dump() would warn about enums stored as text)."""
    if row is None:
        return None
    return {name: getattr(row, name) for name in type(row).model_fields}


def state(engine: Engine, device_id: int) -> dict[str, Any]:
    """Everything stored about a device's audit, as plain values."""
    with reader(engine) as session:
        return {
            "device": _dump(session.get(Device, device_id)),
            "ssl_details": _dump(session.get(SslDetailsRecord, device_id)),
            "job": _dump(session.get(UpdateJob, device_id)),
            "notes": [
                _dump(n)
                for n in session.exec(
                    select(ActivityNote)
                    .where(ActivityNote.device_id == device_id)
                    .order_by(col(ActivityNote.id))
                ).all()
            ],
            "raw_files": [
                _dump(r)
                for r in session.exec(
                    select(RawFile).where(RawFile.device_id == device_id).order_by(col(RawFile.id))
                ).all()
            ],
        }


def blobs(services: Services) -> list[Path]:
    root = services.raw_store.root
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_failure_recorded(
    before: dict[str, Any],
    after: dict[str, Any],
    result: AuditResult,
    *,
    code: ErrorCode,
    now: datetime,
) -> None:
    """The previous audit intact; the error on the device, in a note, and a retry in 1 h."""
    assert result.error is not None
    assert result.error.code == code
    assert result.changed is False
    assert result.raw_file is None
    assert after["ssl_details"] == before["ssl_details"]
    assert after["raw_files"] == before["raw_files"]
    assert after["notes"][:-1] == before["notes"]
    [note] = after["notes"][len(before["notes"]) :]
    assert note["text"] == f"SSL certificate update failed: {result.error.message}"
    assert note["created_at"] == now
    expected_device = {
        **before["device"],
        "last_update_error": result.error.message,
        "consecutive_failures": before["device"]["consecutive_failures"] + 1,
    }
    assert after["device"] == expected_device  # expiry, last update, source: all unchanged
    assert after["job"] is not None
    assert after["job"]["interval_seconds"] == 3600
    assert after["job"]["due_at"] == now + HOUR
    assert result_message(result) == result.error.message


# --- updates that work ---------------------------------------------------------------------------


async def test_an_update_without_changes_adds_a_note_and_nothing_else(env: Env) -> None:
    device_id = await env.device("shop.example")
    before = state(env.engine, device_id)
    checked_at = env.clock.advance(DAY)

    result = await update_audit(env.services, device_id, author="tester")

    assert (result.ok, result.changed, result.first, result.changes) == (True, False, False, [])
    assert result.raw_file is None
    assert result.note == "SSL certificate details checked from shop.example: no changes."
    assert result_message(result) == SSL_UPDATED_MESSAGE
    after = state(env.engine, device_id)
    assert after["raw_files"] == before["raw_files"]
    assert after["notes"][-1]["text"] == result.note
    assert after["notes"][-1]["author"] == "tester"
    assert after["device"]["last_updated_at"] == checked_at
    assert after["job"]["due_at"] == checked_at + 7 * DAY


async def test_a_renewal_is_stored_with_a_raw_file_and_a_new_schedule(env: Env) -> None:
    old = certificate("shop.example", expires_in=5 * DAY)
    device_id = await env.device("shop.example", old)
    renewed_at = env.clock.advance(HOUR)
    new = certificate("shop.example", expires_in=100 * DAY, now=renewed_at)
    env.tls.serving["shop.example"] = new

    result = await update_audit(env.services, device_id, author="tester")

    assert result.ok and result.changed and not result.first
    labels = [change.label for change in result.changes]
    assert "Valid Until" in labels and "Serial Number" in labels
    assert (
        "Valid Until",
        old.leaf.cert.not_valid_after_utc.isoformat(),
        new.leaf.cert.not_valid_after_utc.isoformat(),
    ) in shown(result.changes)
    assert result.raw_file is not None
    content = env.services.raw_store.get(result.raw_file.sha256)
    assert content.decode().endswith(new.chain_pem)
    assert len(content) == result.raw_file.size_bytes
    assert result.next_update is not None
    assert result.next_update.iso_interval == "P30D"
    after = state(env.engine, device_id)
    assert after["ssl_details"]["valid_until"] == new.leaf.cert.not_valid_after_utc
    assert after["device"]["expires_at"] == new.leaf.cert.not_valid_after_utc
    assert after["job"]["due_at"] == renewed_at + 30 * DAY
    assert len(after["raw_files"]) == 2


# --- one transaction -----------------------------------------------------------------------------


class BrokenStore(RawStore):
    """A RAW store whose disk is full."""

    def put(self, content: bytes) -> StoredBlob:
        raise StorageError()


def _break_raw_store(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env.services, "raw_store", BrokenStore(env.services.settings.data_dir))


def _break_the_last_subscriber(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail after the details, the job, the RAW row and the note were written in the
    transaction."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(env.services, "subscribers", (SimpleNamespace(on_updates=broken),))


@pytest.mark.parametrize("breakage", [_break_raw_store, _break_the_last_subscriber])
async def test_a_failed_save_leaves_the_previous_audit_exactly_as_it_was(
    env: Env, monkeypatch: pytest.MonkeyPatch, breakage: Any
) -> None:
    device_id = await env.device("shop.example")
    before = state(env.engine, device_id)
    env.clock.advance(DAY)
    env.tls.serving["shop.example"] = certificate("shop.example", expires_in=300 * DAY)
    breakage(env, monkeypatch)

    result = await update_audit(env.services, device_id, author="tester")

    after = state(env.engine, device_id)
    assert_failure_recorded(before, after, result, code=ErrorCode.SAVE_FAILED, now=env.clock.now)
    assert result.error is not None
    assert result.error.message.startswith("The update could not be saved: ")
    # No row points at a blob that is not there (an unreferenced blob is harmless).
    with reader(env.engine) as session:
        for row in session.exec(select(RawFile)).all():
            assert env.services.raw_store.path_for(row.sha256).is_file()


async def test_a_database_error_is_told_briefly_without_sql_or_certificate_data(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    device_id = await env.device("shop.example")
    before = state(env.engine, device_id)
    env.clock.advance(DAY)
    renewed = certificate("shop.example", expires_in=300 * DAY)
    env.tls.serving["shop.example"] = renewed

    def locked(self: object, batch: UpdateBatch) -> None:
        if not any(event.raw for event in batch.events):
            return
        raise sa.exc.OperationalError(
            "INSERT INTO raw_files (device_id, file_name) VALUES (?, ?)",
            (device_id, renewed.chain_pem),
            sqlite3.OperationalError("database is locked"),
        )

    monkeypatch.setattr(records.RawFiles, "on_updates", locked)
    result = await update_audit(env.services, device_id, author="tester")

    after = state(env.engine, device_id)
    assert_failure_recorded(before, after, result, code=ErrorCode.SAVE_FAILED, now=env.clock.now)
    assert after["device"]["last_update_error"] == (
        "The update could not be saved: database is locked"
    )


async def test_a_failed_retrieval_leaves_the_previous_audit(env: Env) -> None:
    device_id = await env.device("shop.example")
    before = state(env.engine, device_id)
    env.clock.advance(DAY)
    env.tls.serving["shop.example"] = ProbeError(ErrorCode.CERTIFICATE_NOT_FOUND, "gone")

    result = await update_audit(env.services, device_id, author="tester")

    after = state(env.engine, device_id)
    assert_failure_recorded(
        before, after, result, code=ErrorCode.CERTIFICATE_NOT_FOUND, now=env.clock.now
    )


async def test_a_failure_of_an_inactive_device_creates_no_job(env: Env) -> None:
    device_id = await env.device("shop.example", active=False)
    env.tls.serving["shop.example"] = ProbeError(ErrorCode.CERTIFICATE_NOT_FOUND, "gone")
    result = await update_audit(env.services, device_id, author="tester")
    assert result.error is not None
    assert result.next_update is None
    after = state(env.engine, device_id)
    assert after["job"] is None
    assert after["device"]["last_update_error"] == result.error.message


async def test_a_creation_whose_save_fails_saves_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_raw_store(env, monkeypatch)
    with pytest.raises(DstrackError) as refused:
        await env.device("shop.example")
    assert refused.value.message == STORAGE_FAILED_MESSAGE
    with reader(env.engine) as session:
        for model in (Device, SslDetailsRecord, UpdateJob, ActivityNote, RawFile):
            assert session.exec(select(model)).all() == [], model.__name__


# --- what cannot start ---------------------------------------------------------------------------


async def test_updates_that_cannot_start_raise_and_record_nothing(env: Env) -> None:
    with pytest.raises(DstrackError) as unknown:
        await update_audit(env.services, 999, author="tester")
    assert unknown.value.code == ErrorCode.NOT_FOUND

    device_id = await env.device("shop.example")
    before = state(env.engine, device_id)
    with transaction(env.engine) as session:
        store_tracking_enabled(session, False)
    with pytest.raises(DstrackError) as disabled:
        await update_audit(env.services, device_id, author="tester")
    assert disabled.value.code == ErrorCode.TRACKING_DISABLED
    assert state(env.engine, device_id) == before
    assert env.tls.calls == ["shop.example"]  # only the creation's


# --- many devices ------------------------------------------------------------------------------


async def test_many_devices_answer_in_input_order_and_one_failure_stops_no_other(
    env: Env,
) -> None:
    hosts = ["a.example", "b.example", "c.example", "d.example"]
    ids = [await env.device(host) for host in hosts]
    env.clock.advance(DAY)
    env.tls.serving["b.example"] = ProbeError(ErrorCode.SSL_DETAILS_UNAVAILABLE)
    env.tls.serving["c.example"] = RuntimeError("a bug in a probe")
    asked = [ids[3], 999, ids[1], ids[2], ids[0]]

    results = await update_many(env.services, asked, author="tester", concurrency=2)

    assert [r.device_id for r in results] == asked
    codes = [r.error.code if r.error else None for r in results]
    assert codes[0] is None and codes[4] is None
    assert codes[1] == ErrorCode.NOT_FOUND
    assert codes[2] == ErrorCode.SSL_DETAILS_UNAVAILABLE
    assert codes[3] == ErrorCode.UPDATE_FAILED  # the unexpected failure is that device's own
    assert result_message(results[3]) == "The update failed unexpectedly; the error was logged."
    assert [result_message(r) for r in (results[0], results[4])] == [SSL_UPDATED_MESSAGE] * 2
    assert state(env.engine, ids[0])["device"]["last_updated_at"] == env.clock.now


async def test_many_devices_are_updated_a_bounded_number_at_a_time(env: Env) -> None:
    ids = [await env.device(f"h{i}.example") for i in range(7)]
    env.tls.delay = 0.03
    results = await update_many(env.services, ids, author="tester", concurrency=3)
    assert all(r.ok for r in results)
    assert env.tls.most_in_flight == 3


async def test_finished_look_ups_are_saved_together_and_one_bad_save_sinks_no_other(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [await env.device(f"h{i}.example") for i in range(5)]
    env.clock.advance(DAY)
    for i in range(5):  # every certificate renewed: each update writes a RAW file
        env.tls.serving[f"h{i}.example"] = certificate(f"h{i}.example", expires_in=300 * DAY)
    before = {i: state(env.engine, i) for i in ids}
    doomed = certificate("h2.example", expires_in=300 * DAY)
    env.tls.serving["h2.example"] = doomed
    real_put = env.services.raw_store.put

    def put(content: bytes) -> StoredBlob:
        if doomed.chain_pem.encode() in content:
            raise OSError(28, "No space left on device")
        return real_put(content)

    monkeypatch.setattr(env.services.raw_store, "put", put)
    results = await update_many(env.services, ids, author="tester", batch_size=5)

    # The batch's transaction failed on h2, so each update was written on its own.
    assert [r.error.code if r.error else None for r in results] == [
        None,
        None,
        ErrorCode.SAVE_FAILED,
        None,
        None,
    ]
    for i, device_id in enumerate(ids):
        after = state(env.engine, device_id)
        if i == 2:
            assert_failure_recorded(
                before[device_id], after, results[i], code=ErrorCode.SAVE_FAILED, now=env.clock.now
            )
        else:
            renewed = env.tls.serving[f"h{i}.example"]
            assert isinstance(renewed, ServedCertificate)
            assert after["ssl_details"]["valid_until"] == renewed.leaf.cert.not_valid_after_utc
            assert len(after["raw_files"]) == 2


CERTIFICATE_INDEPENDENT = (
    "trusted",
    "trust_error",
    "hostname_matches",
    "retrieved_at",
    "address",
    "protocol",
    "chain_length",
)


async def test_an_unchanged_refresh_writes_the_same_alone_and_in_a_batch(env: Env) -> None:
    """One device alone and a batch go through the same write path: the stored result must
    not differ."""
    ids = [await env.device(f"h{i}.example") for i in range(3)]
    env.clock.advance(DAY)
    with transaction(env.engine) as session:  # as if the sensor had claimed the jobs
        for job in session.exec(select(UpdateJob)).all():
            job.claimed_by, job.claimed_until = "sensor", env.clock.now + DAY

    alone = await update_audit(env.services, ids[0], author="tester")
    together = await update_many(env.services, ids[1:], author="tester")

    def stored(index: int) -> dict[str, Any]:
        found = state(env.engine, ids[index])
        del found["device"]["id"], found["device"]["name"], found["device"]["ssl_host"]
        del found["job"]["device_id"]
        # What does not depend on the certificate, which is each host's own.
        details = found["ssl_details"]
        found["ssl_details"] = {key: details[key] for key in CERTIFICATE_INDEPENDENT}
        last = found["notes"][-1]
        found["notes"] = [len(found["notes"]), last["author"], last["created_at"]]
        found["raw_files"] = len(found["raw_files"])  # the first audit's only
        found["expiry_in"] = found["device"].pop("expires_at") - env.clock.now
        found["note"] = last["text"].replace(f"h{index}.example", "HOST")
        return found

    assert stored(1) == stored(0) == stored(2)
    assert stored(0)["note"] == "SSL certificate details checked from HOST: no changes."
    assert stored(0)["job"]["claimed_by"] is None
    for result in [alone, *together]:
        assert (result.changed, result.first, result.changes, result.raw_file) == (
            False,
            False,
            [],
            None,
        )
    assert alone.next_update == together[0].next_update == together[1].next_update
    assert together[0].note.endswith("from h1.example: no changes.")


async def test_a_batch_is_written_with_a_few_queries_not_a_few_per_device(env: Env) -> None:
    ids = [await env.device(f"h{i}.example") for i in range(20)]
    env.clock.advance(DAY)
    statements: list[str] = []
    sa.event.listen(env.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    results = await update_many(env.services, ids, author="tester", batch_size=20)

    assert all(r.ok and not r.changed for r in results)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 8, "\n".join(s.split("WHERE")[0][-60:] for s in selects)


def test_result_messages() -> None:
    ok = AuditResult(device_id=1)
    assert result_message(ok) == "The SSL certificate was updated."
    assert result_message(AuditResult(device_id=1, is_domain=True)) == "The domain was updated."
    dns_only = AuditResult(
        device_id=1, is_domain=True, error=DstrackError(ErrorCode.DNS_LOOKUP_FAILED, "SERVFAIL")
    )
    assert result_message(dns_only) == "The domain was updated."
    failed = AuditResult(device_id=1, error=ProbeError(ErrorCode.CERTIFICATE_NOT_FOUND))
    assert result_message(failed) == (
        "SSL Certificate not found. Please check spelling and try again."
    )


def shown(changes: list[Change]) -> list[tuple[str, str | None, str | None]]:
    """Changes as an Activity note shows them."""
    return [(change.label, change.old, change.new) for change in changes]
