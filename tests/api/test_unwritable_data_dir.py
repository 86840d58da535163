"""A data directory that cannot be written: a clear error, nothing half-saved, no server path
in anything a user can read, the details in the operator's log, and /healthz says so."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from api.app import create_app
from tests.api import helpers
from tests.conftest import GraphQLClient, World
from tests.fakes import pki
from tracking.core.ids import decode_pk
from tracking.refresh.rawstore import STORAGE_FAILED_MESSAGE
from tracking.refresh.services import Services

FORCE_UPDATE = """
mutation($ids: [ID!]!) {
  forceUpdate(ids: $ids) { results { changed message errors { code message } } }
}"""
DEVICE = """
query($id: ID!) { device(id: $id) { lastUpdateError activity { text } } }"""


def break_data_dir(services: Services) -> Path:
    """Where RAW files go becomes a plain file: even root cannot write below it."""
    raw = services.raw_store.root
    if raw.exists():
        shutil.rmtree(raw)
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text("not a directory")
    return raw


def nothing_of(path: Path, text: str) -> bool:
    return str(path) not in text and str(path.parent) not in text


async def test_create_device_is_a_clear_error_and_saves_nothing(
    api: GraphQLClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    org = await helpers.organization(api)
    before = await helpers.device_count(api)
    raw = break_data_dir(services)
    with caplog.at_level(logging.ERROR):
        payload = await helpers.create_device(
            api,
            organizationId=org,
            category="SSL_CERTIFICATE",
            sslSource=pki.test_ca().leaf("a.test").pem,
        )
    assert payload["device"] is None
    assert payload["errors"] == [
        {"field": None, "code": "SAVE_FAILED", "message": STORAGE_FAILED_MESSAGE}
    ]
    assert nothing_of(raw, str(payload))
    assert await helpers.device_count(api) == before
    assert str(raw) in caplog.text  # the operator learns where


async def test_a_refresh_records_save_failed_without_the_path(
    api: GraphQLClient, services: Services, world: World
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    pk = decode_pk(device["id"], "Device")
    with services.engine.begin() as connection:  # the server has renewed since: a new RAW file
        connection.execute(
            sa.text("UPDATE ssl_details SET fingerprint_sha256 = 'AA' WHERE device_id = :id"),
            {"id": pk},
        )
    raw = break_data_dir(services)

    data = await api.ok(FORCE_UPDATE, ids=[device["id"]])

    [result] = data["forceUpdate"]["results"]
    assert result["errors"] == [{"code": "SAVE_FAILED", "message": STORAGE_FAILED_MESSAGE}]
    shown = (await api.ok(DEVICE, id=device["id"]))["device"]
    assert shown["lastUpdateError"] == STORAGE_FAILED_MESSAGE
    assert (
        shown["activity"][0]["text"] == f"SSL certificate update failed: {STORAGE_FAILED_MESSAGE}"
    )
    assert nothing_of(raw, str(result) + str(shown))


async def test_healthz_reports_the_storage_problem(services: Services) -> None:
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dstrack.test") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        raw = break_data_dir(services)
        response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "storage unavailable",
        "reason": "the data directory cannot be written",
    }
    assert nothing_of(raw, response.text)
