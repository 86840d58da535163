"""RAW files through the API: listed on the device newest first, downloadable with the token,
stored content-addressed under ``DSTRACK_DATA_DIR/raw``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api import helpers, queries
from tests.conftest import GraphQLClient, World
from tests.fakes import pki
from tests.fakes.tls_server import standard_certificates
from tests.support.clock import Clock
from tracking.core.clock import use_clock
from tracking.core.ids import encode_id
from tracking.refresh.services import Services

T0 = pki.NOW
MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock() -> Iterator[Clock]:
    frozen = Clock(T0)
    with use_clock(frozen):
        yield frozen


def blobs(services: Services) -> list[Path]:
    root = services.settings.data_dir / "raw"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def download(api: GraphQLClient, raw: dict[str, Any], token: str | None = None) -> bytes:
    response = await api.http.get(
        raw["url"], headers={"Authorization": f"Bearer {token or api.token}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(raw["contentType"])
    assert raw["fileName"] in response.headers["content-disposition"]
    return response.content


async def change_source(api: GraphQLClient, device_id: str, source: str) -> dict[str, Any]:
    data = await api.ok(queries.UPDATE_DEVICE, id=device_id, input={"sslSource": source})
    payload = data["updateDevice"]
    assert payload["errors"] == []
    device: dict[str, Any] = payload["device"]
    return device


async def test_every_retrieval_with_changes_adds_a_raw_file_newest_first(
    api: GraphQLClient, world: World, services: Services, clock: Clock
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    [first] = device["rawFiles"]
    first_content = await download(api, first)

    clock.advance(MINUTE)
    await change_source(api, device["id"], world.host("expired.test"))
    clock.advance(MINUTE)
    device = await change_source(api, device["id"], world.host("self-signed.test"))

    raw_files = device["rawFiles"]
    assert [at(r["createdAt"]) for r in raw_files] == [T0 + 2 * MINUTE, T0 + MINUTE, T0]
    assert raw_files[-1] == first
    assert len({r["id"] for r in raw_files}) == 3
    served = ["self-signed.test", "expired.test", "good.test"]
    for raw, name in zip(raw_files, served, strict=True):
        content = await download(api, raw)
        assert content.decode().endswith(standard_certificates()[name].chain_pem), name
        assert f"# host: {name}\n" in content.decode()
        assert hashlib.sha256(content).hexdigest() == raw["sha256"]
        assert len(content) == raw["sizeBytes"]
        assert raw["contentType"] == "application/x-pem-file"
        assert raw["fileName"].endswith(".pem")
        assert name in raw["fileName"]
        # Stored content-addressed under the data directory.
        path = services.settings.data_dir / "raw" / raw["sha256"][:2] / raw["sha256"]
        assert path.read_bytes() == content
    # The first snapshot is still there, byte for byte, after the later updates.
    assert await download(api, first) == first_content
    assert len(blobs(services)) == 3


async def test_identical_content_is_stored_once_and_never_rewritten(
    api: GraphQLClient, services: Services, clock: Clock
) -> None:
    pem = pki.test_ca().leaf("twin.example", not_before=T0 - timedelta(days=1), days=365).pem
    org = await helpers.organization(api)
    one = await helpers.ssl_device(api, org, pem, name="one")
    [blob] = blobs(services)
    stat = blob.stat()

    # The same certificate decoded at the same moment: the same RAW content.
    two = await helpers.ssl_device(api, org, pem, name="two")

    [raw_one], [raw_two] = one["rawFiles"], two["rawFiles"]
    assert raw_one["id"] != raw_two["id"]
    assert raw_one["sha256"] == raw_two["sha256"]
    assert blobs(services) == [blob]
    assert (blob.stat().st_ino, blob.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert await download(api, raw_one) == await download(api, raw_two) == blob.read_bytes()


async def test_a_forced_update_without_changes_adds_no_raw_file(
    api: GraphQLClient, world: World, services: Services, clock: Clock
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    clock.advance(MINUTE)
    data = await api.ok(
        "mutation($ids: [ID!]!) { forceUpdate(ids: $ids) { results { changed "
        "device { rawFiles { id sha256 } } } } }",
        ids=[device["id"]],
    )
    [result] = data["forceUpdate"]["results"]
    assert result["changed"] is False
    assert result["device"]["rawFiles"] == [
        {"id": r["id"], "sha256": r["sha256"]} for r in device["rawFiles"]
    ]
    assert len(blobs(services)) == 1


async def test_a_download_needs_the_token(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    [raw] = (await helpers.ssl_device(api, org, world.host("good.test")))["rawFiles"]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await api.http.get(raw["url"], headers=headers)
        assert response.status_code == 401
        assert "CERTIFICATE" not in response.text


async def test_unknown_raw_files_are_not_found(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    [raw] = device["rawFiles"]
    headers = {"Authorization": f"Bearer {api.token}"}
    for raw_id in (
        encode_id("RawFile", 9_999),
        device["id"],  # an ID of another type
        org,
        raw["sha256"],
        "not-an-id",
    ):
        response = await api.http.get(f"/raw/{raw_id}", headers=headers)
        assert response.status_code == 404, raw_id
        assert "CERTIFICATE" not in response.text


async def test_another_organizations_raw_file_is_not_found_for_a_user_who_cannot_see_it(
    api: GraphQLClient, world: World
) -> None:
    vendor = await helpers.organization(api, "Supplier", type="VENDOR")
    [raw] = (await helpers.ssl_device(api, vendor, world.host("good.test")))["rawFiles"]
    level = await api.ok(
        """mutation { createSecurityLevel(input: {name: "Customers only", crmAccess: true,
           viewOrganizationTypes: [CUSTOMER], canAddDevices: true, canEditDevices: true,
           canDeleteDevices: false}) { securityLevel { id } errors { code } } }"""
    )
    level_id = level["createSecurityLevel"]["securityLevel"]["id"]
    user = await api.ok(
        'mutation($l: ID!) { createUser(input: {name: "erin", securityLevelId: $l}) '
        "{ token errors { code } } }",
        l=level_id,
    )
    token = user["createUser"]["token"]
    response = await api.http.get(raw["url"], headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert "CERTIFICATE" not in response.text


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_raw_file_whose_content_is_gone_is_reported_not_crashed(
    api: GraphQLClient, world: World, services: Services
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    [raw] = device["rawFiles"]
    services.raw_store.path_for(raw["sha256"]).unlink()
    response = await api.http.get(raw["url"], headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 410
    assert "missing" in response.json()["error"]
