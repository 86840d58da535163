"""Keeping SSL Details up to date, through the API with a controllable clock.

The reference's "Updating SSL certification details": the update schedule, jobs and
activation, the tracking switch, forced updates ("Update SSL Certificate Details", one or
many devices) and "Save & Check for SSL Certificate". Certificates are served by a local TLS
server of the test's own, whose certificates can be renewed while it runs.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api import helpers, queries
from tests.conftest import GraphQLClient, World
from tests.fakes import pki
from tests.fakes.tls_server import FakeTlsServer, ServedCertificate, served
from tests.support.clock import Clock
from tracking.core.clock import use_clock
from tracking.core.ids import encode_id
from tracking.manage import updates
from tracking.probes.tls import TlsHandshake, TlsProbe
from tracking.refresh.services import Services

UPDATED = "The SSL certificate was updated."
NOT_FOUND_MESSAGE = "SSL Certificate not found. Please check spelling and try again."
T0 = pki.NOW  # "now" when a test starts (whole seconds, the certificates' reference time)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

FORCE_UPDATE = f"""
mutation($ids: [ID!]!) {{
  forceUpdate(ids: $ids) {{
    results {{
      deviceId changed message
      errors {{ field code message }}
      device {{ {queries.DEVICE_FIELDS} }}
    }}
  }}
}}"""
SET_ACTIVE = f"""
mutation($id: ID!, $active: Boolean!) {{
  setDeviceActive(id: $id, active: $active) {{
    device {{ {queries.DEVICE_FIELDS} }}
    errors {{ field code message }}
  }}
}}"""
SET_TRACKING = "mutation($on: Boolean!) { setTrackingEnabled(enabled: $on) { enabled } }"
TRACKING = "query { trackingSettings { enabled } }"


# --- the test's world: a clock and a TLS server whose certificates can be renewed ------------


@pytest.fixture
def clock() -> Iterator[Clock]:
    frozen = Clock(T0)
    with use_clock(frozen):
        yield frozen


class RenewableTlsServer(FakeTlsServer):
    """A :class:`FakeTlsServer` whose certificate for a name can be replaced while it runs."""

    def renew(self, name: str, cert: ServedCertificate) -> None:
        with tempfile.TemporaryDirectory(prefix="dstrack-renew-") as tmp:
            context = self._context(cert, Path(tmp) / "renewed")
        with self._lock:
            self.certificates[name.lower()] = cert
            self._contexts[name.lower()] = context


def certificate(name: str, *, expires_in: timedelta, now: datetime = T0) -> ServedCertificate:
    """A certificate for ``name`` (under the test CA) expiring ``expires_in`` after ``now``."""
    ca = pki.test_ca()
    not_after = now + expires_in
    not_before = min(now, not_after) - 30 * DAY
    return served(ca.leaf(name, not_before=not_before, not_after=not_after), ca.intermediate)


@pytest.fixture
def site(world: World) -> Iterator[RenewableTlsServer]:
    """A TLS server of the test's own; ``serve()`` adds names (resolved by the world's DNS)."""
    with RenewableTlsServer({"site.test": certificate("site.test", expires_in=200 * DAY)}) as tls:
        world.dns.load({"site.test.": {"A": "127.0.0.1"}})
        yield tls


def serve(world: World, server: RenewableTlsServer, name: str, cert: ServedCertificate) -> str:
    """Serve ``cert`` for ``name`` and return the SSL Source of it."""
    server.renew(name, cert)
    world.dns.load({f"{name}.": {"A": "127.0.0.1"}})
    return f"{name}:{server.port}"


# --- small steps ---------------------------------------------------------------------------------


def at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def schedule(device: dict[str, Any]) -> tuple[str, datetime | None] | None:
    """(interval, next update) of a device's auto-updating job, None when there is none."""
    job = device["updateSchedule"]
    return None if job is None else (job["interval"], at(job["nextUpdateAt"]))


async def force(api: GraphQLClient, *ids: str) -> list[dict[str, Any]]:
    data = await api.ok(FORCE_UPDATE, ids=list(ids))
    results: list[dict[str, Any]] = data["forceUpdate"]["results"]
    return results


async def force_one(api: GraphQLClient, device_id: str) -> dict[str, Any]:
    [result] = await force(api, device_id)
    assert result["deviceId"] == device_id
    return result


async def read(api: GraphQLClient, device_id: str) -> dict[str, Any]:
    device: dict[str, Any] = (await api.ok(queries.DEVICE, id=device_id))["device"]
    return device


async def set_active(api: GraphQLClient, device_id: str, active: bool) -> dict[str, Any]:
    payload = (await api.ok(SET_ACTIVE, id=device_id, active=active))["setDeviceActive"]
    assert payload["errors"] == []
    device: dict[str, Any] = payload["device"]
    return device


async def set_tracking(api: GraphQLClient, on: bool) -> None:
    data = await api.ok(SET_TRACKING, on=on)
    assert data["setTrackingEnabled"] == {"enabled": on}
    assert (await api.ok(TRACKING))["trackingSettings"] == {"enabled": on}


def notes(device: dict[str, Any]) -> list[str]:
    return [note["text"] for note in device["activity"]]


def pem_certificate(cn: str = "pem.example") -> str:
    return pki.test_ca().leaf(cn, not_before=T0 - DAY, days=365).pem


# --- the update schedule -------------------------------------------------------------------------


async def test_the_interval_follows_the_time_left_before_expiry(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    expected = {
        "in-200-days.test": (200 * DAY, "P30D", timedelta(days=30)),
        "in-60-days.test": (60 * DAY, "P7D", timedelta(days=7)),
        "in-20-days.test": (20 * DAY, "PT48H", timedelta(hours=48)),
        "in-3-days.test": (3 * DAY, "PT24H", timedelta(hours=24)),
        "yesterday.test": (-DAY, "PT24H", timedelta(hours=24)),
    }
    org = await helpers.organization(api)
    seen = {}
    for name, (left, _, _) in expected.items():
        source = serve(world, site, name, certificate(name, expires_in=left))
        device = await helpers.ssl_device(api, org, source)
        assert at(device["sslDetails"]["validUntil"]) == T0 + left
        assert at(device["lastUpdatedAt"]) == T0
        seen[name] = schedule(device)
    assert seen == {name: (iso, T0 + interval) for name, (_, iso, interval) in expected.items()}


async def test_the_schedule_moves_on_as_time_passes(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    source = serve(world, site, "soon.test", certificate("soon.test", expires_in=95 * DAY))
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, source)
    assert schedule(device) == ("P30D", T0 + 30 * DAY)

    later = clock.advance(30 * DAY)  # the job ran: 65 days left now
    result = await force_one(api, device["id"])
    assert result["errors"] == []
    assert result["changed"] is False
    assert schedule(result["device"]) == ("P7D", later + 7 * DAY)
    assert at(result["device"]["lastUpdatedAt"]) == later


async def test_a_renewed_certificate_recomputes_the_schedule(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    old = certificate("renew.test", expires_in=3 * DAY)
    source = serve(world, site, "renew.test", old)
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, source)
    assert schedule(device) == ("PT24H", T0 + 24 * HOUR)

    now = clock.advance(2 * HOUR)
    new = certificate("renew.test", expires_in=200 * DAY, now=now)
    site.renew("renew.test", new)
    result = await force_one(api, device["id"])

    assert result["errors"] == []
    assert result["message"] == UPDATED
    assert result["changed"] is True
    updated = result["device"]
    assert at(updated["sslDetails"]["validUntil"]) == now + 200 * DAY
    assert schedule(updated) == ("P30D", now + 30 * DAY)
    old_until = old.leaf.cert.not_valid_after_utc.isoformat()
    new_until = new.leaf.cert.not_valid_after_utc.isoformat()
    assert notes(updated)[0].startswith(f"SSL certificate details updated from {source}:")
    assert f"Valid Until: {old_until} → {new_until}" in notes(updated)[0]
    assert await read(api, device["id"]) == updated


async def test_a_failed_update_retries_in_one_hour_then_returns_to_the_schedule(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    source = serve(world, site, "flaky.test", certificate("flaky.test", expires_in=60 * DAY))
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, source)
    assert schedule(device) == ("P7D", T0 + 7 * DAY)

    failed_at = clock.advance(7 * DAY)
    world.dns.remove_name("flaky.test.")  # the name no longer resolves
    result = await force_one(api, device["id"])
    assert [e["code"] for e in result["errors"]] == ["CERTIFICATE_NOT_FOUND"]
    assert result["message"] == NOT_FOUND_MESSAGE
    failed = result["device"]
    assert schedule(failed) == ("PT1H", failed_at + HOUR)
    assert failed["lastUpdateError"] == NOT_FOUND_MESSAGE
    assert failed["sslDetails"] == device["sslDetails"]
    assert failed["lastUpdatedAt"] == device["lastUpdatedAt"]
    assert failed["rawFiles"] == device["rawFiles"]
    assert notes(failed)[0] == f"SSL certificate update failed: {NOT_FOUND_MESSAGE}"

    # Still failing an hour later: another hour.
    retried_at = clock.advance(HOUR)
    again = await force_one(api, device["id"])
    assert schedule(again["device"]) == ("PT1H", retried_at + HOUR)

    # Back: the expiry-based interval again, and the error is gone.
    back_at = clock.advance(HOUR)
    world.dns.load({"flaky.test.": {"A": "127.0.0.1"}})
    recovered = await force_one(api, device["id"])
    assert recovered["errors"] == []
    assert recovered["message"] == UPDATED
    assert recovered["device"]["lastUpdateError"] is None
    assert schedule(recovered["device"]) == ("P7D", back_at + 7 * DAY)


async def test_a_recreated_job_keeps_the_one_hour_retry_of_a_failed_device(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    source = serve(world, site, "down.test", certificate("down.test", expires_in=200 * DAY))
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, source)
    world.dns.remove_name("down.test.")
    clock.advance(HOUR)
    assert (await force_one(api, device["id"]))["errors"] != []

    await set_active(api, device["id"], False)
    on_at = clock.advance(DAY)
    on = await set_active(api, device["id"], True)
    assert schedule(on) == ("PT1H", on_at + HOUR)
    assert "failed" in on["updateSchedule"]["reason"]

    await set_tracking(api, False)
    back_at = clock.advance(DAY)
    await set_tracking(api, True)
    assert schedule(await read(api, device["id"])) == ("PT1H", back_at + HOUR)


# --- jobs and activation -------------------------------------------------------------------------


async def test_pem_certificates_never_get_a_job(api: GraphQLClient, clock: Clock) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, pem_certificate())
    assert device["updateSchedule"] is None
    assert (await set_active(api, device["id"], False))["updateSchedule"] is None
    assert (await set_active(api, device["id"], True))["updateSchedule"] is None
    result = await force_one(api, device["id"])
    assert result["message"] == UPDATED
    assert result["device"]["updateSchedule"] is None


async def test_a_device_created_inactive_has_no_job_until_activated(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    source = serve(world, site, "later.test", certificate("later.test", expires_in=60 * DAY))
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, source, active=False)
    assert device["active"] is False
    assert device["sslDetails"] is not None  # retrieved all the same
    assert device["updateSchedule"] is None

    # A manual update still works, and creates no job.
    checked_at = clock.advance(DAY)
    result = await force_one(api, device["id"])
    assert result["errors"] == []
    assert result["message"] == UPDATED
    assert at(result["device"]["lastUpdatedAt"]) == checked_at
    assert notes(result["device"])[0].endswith("no changes.")
    assert result["device"]["updateSchedule"] is None

    activated_at = clock.advance(DAY)  # 58 days left
    activated = await set_active(api, device["id"], True)
    assert activated["active"] is True
    assert schedule(activated) == ("P7D", activated_at + 7 * DAY)
    assert notes(activated)[0] == "Device activated by admin."


async def test_inactivating_deletes_the_job_and_activating_creates_it_again(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, f"site.test:{site.port}")
    assert schedule(device) == ("P30D", T0 + 30 * DAY)

    off = await set_active(api, device["id"], False)
    assert off["active"] is False
    assert off["updateSchedule"] is None
    assert (await read(api, device["id"]))["updateSchedule"] is None

    # Inactive: a forced update works and still creates no job.
    result = await force_one(api, device["id"])
    assert result["errors"] == []
    assert result["device"]["updateSchedule"] is None

    on_at = clock.advance(3 * DAY)
    on = await set_active(api, device["id"], True)
    assert schedule(on) == ("P30D", on_at + 30 * DAY)


async def test_an_active_expired_certificate_keeps_its_job(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    source = serve(world, site, "old.test", certificate("old.test", expires_in=-40 * DAY))
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, source)
    assert schedule(device) == ("PT24H", T0 + 24 * HOUR)
    assert "expired" in device["updateSchedule"]["reason"]

    next_day = clock.advance(24 * HOUR)
    result = await force_one(api, device["id"])
    assert result["errors"] == []
    assert schedule(result["device"]) == ("PT24H", next_day + 24 * HOUR)


async def test_the_tracking_switch_removes_and_recreates_the_jobs(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    assert (await api.ok(TRACKING))["trackingSettings"] == {"enabled": True}
    org = await helpers.organization(api)
    host = f"site.test:{site.port}"
    active = await helpers.ssl_device(api, org, host, name="active")
    second = await helpers.ssl_device(api, org, world.host("good.test"), name="second")
    inactive = await helpers.ssl_device(api, org, host, name="inactive", active=False)
    pem = await helpers.ssl_device(api, org, pem_certificate(), name="pem")
    assert schedule(active) is not None and schedule(second) is not None

    await set_tracking(api, False)
    for device in (active, second, inactive, pem):
        assert (await read(api, device["id"]))["updateSchedule"] is None, device["name"]

    # Host sources are refused and nothing is saved ...
    count = await helpers.device_count(api)
    payload = await helpers.create_device(
        api, organizationId=org, category="SSL_CERTIFICATE", sslSource=host
    )
    assert payload["device"] is None
    assert [e["code"] for e in payload["errors"]] == ["TRACKING_DISABLED"]
    assert await helpers.device_count(api) == count

    # ... and so are forced updates of host devices, each on its own; PEMs are still decoded.
    connections = len(site.connections)
    before = await read(api, active["id"])
    clock.advance(HOUR)
    refused, decoded = await force(api, active["id"], pem["id"])
    assert [e["code"] for e in refused["errors"]] == ["TRACKING_DISABLED"]
    assert refused["changed"] is False
    assert refused["device"] == before  # no note, no error recorded, no job
    assert decoded["errors"] == []
    assert decoded["message"] == UPDATED
    assert decoded["device"]["updateSchedule"] is None
    new_pem = await helpers.ssl_device(api, org, pem_certificate("another.example"))
    assert new_pem["sslDetails"]["commonName"] == "another.example"
    assert new_pem["updateSchedule"] is None
    assert len(site.connections) == connections

    on_at = clock.advance(HOUR)
    await set_tracking(api, True)
    schedules = {
        d["name"]: schedule(await read(api, d["id"]))
        for d in (active, second, inactive, pem, new_pem)
    }
    assert schedules == {
        "active": ("P30D", on_at + 30 * DAY),
        "second": ("P7D", on_at + 7 * DAY),  # good.test: 90 days from T0 - 1 day
        "inactive": None,
        "pem": None,
        "another.example": None,
    }


# --- forced updates ------------------------------------------------------------------------------


async def test_a_forced_update_without_changes_adds_a_note_but_no_raw_file(
    api: GraphQLClient, world: World, clock: Clock
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    assert len(device["rawFiles"]) == 1
    checked_at = clock.advance(HOUR)

    result = await force_one(api, device["id"])

    assert result == result | {"changed": False, "message": UPDATED, "errors": []}
    updated = result["device"]
    assert (
        notes(updated)[0]
        == f"SSL certificate details checked from {world.host('good.test')}: no changes."
    )
    assert notes(updated)[1:] == notes(device)
    assert at(updated["activity"][0]["createdAt"]) == checked_at
    assert updated["activity"][0]["author"] == "admin"
    assert updated["rawFiles"] == device["rawFiles"]
    assert updated["sslDetails"] == device["sslDetails"]
    assert at(updated["lastUpdatedAt"]) == checked_at


async def test_a_forced_update_with_changes_adds_a_note_and_a_raw_file(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    source = f"site.test:{site.port}"
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, source)
    renewed_at = clock.advance(DAY)
    renewed = certificate("site.test", expires_in=365 * DAY, now=renewed_at)
    site.renew("site.test", renewed)

    result = await force_one(api, device["id"])

    assert result == result | {"changed": True, "message": UPDATED, "errors": []}
    updated = result["device"]
    assert updated["sslDetails"]["validUntil"] == renewed.leaf.cert.not_valid_after_utc.isoformat()
    assert notes(updated)[0].startswith(f"SSL certificate details updated from {source}: ")
    assert "Serial Number: " in notes(updated)[0]
    assert len(updated["rawFiles"]) == 2
    newest = updated["rawFiles"][0]
    assert updated["rawFiles"][1] == device["rawFiles"][0]
    assert at(newest["createdAt"]) == renewed_at
    response = await api.http.get(newest["url"], headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200
    assert response.content.decode().endswith(renewed.chain_pem)


async def test_many_devices_at_once_answer_in_input_order(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    org = await helpers.organization(api)
    names = [f"many-{i:02}.test" for i in range(12)]
    expiry = {name: T0 + (10 + 20 * i) * DAY for i, name in enumerate(names)}
    ids = []
    for name in names:
        source = serve(world, site, name, certificate(name, expires_in=expiry[name] - T0))
        ids.append((await helpers.ssl_device(api, org, source, name=name))["id"])
    standard = await helpers.create_device(api, organizationId=org, category="STANDARD", name="PC")
    order = random.Random(4).sample(ids, len(ids))
    unknown = encode_id("Device", 99_999)
    organization_id = org  # an ID, but of another type
    standard_id = standard["device"]["id"]
    asked = [*order[:5], unknown, *order[5:9], organization_id, *order[9:], standard_id, order[0]]
    checked_at = clock.advance(HOUR)

    results = await force(api, *asked)

    assert [r["deviceId"] for r in results] == asked
    for given, result in zip(asked, results, strict=True):
        if given in (unknown, organization_id):
            assert result["device"] is None
            assert [e["code"] for e in result["errors"]] == ["NOT_FOUND"]
            assert result["changed"] is False
        elif given == standard_id:
            assert [e["code"] for e in result["errors"]] == ["INVALID_INPUT"]
            assert result["device"]["activity"] == standard["device"]["activity"]
        else:
            assert result["errors"] == [], given
            assert result["message"] == UPDATED
            device = result["device"]
            assert device["id"] == given
            assert at(device["lastUpdatedAt"]) == checked_at
            assert at(device["sslDetails"]["validUntil"]) == expiry[device["name"]]
    by_id = {r["deviceId"]: r["device"] for r in results if r["device"]}
    assert [by_id[i]["name"] for i in ids] == names
    # Asked twice, updated once.
    assert results[-1] == results[0]
    assert notes(results[0]["device"])[1].startswith("SSL certificate details retrieved")


async def test_a_device_whose_host_went_away_keeps_its_details(
    api: GraphQLClient, world: World, clock: Clock
) -> None:
    org = await helpers.organization(api)
    world.dns.load({"gone.test.": {"A": "127.0.0.1"}})
    with FakeTlsServer({"gone.test": certificate("gone.test", expires_in=60 * DAY)}) as server:
        gone = await helpers.ssl_device(api, org, f"gone.test:{server.port}")
    staying = await helpers.ssl_device(api, org, world.host("good.test"))
    failed_at = clock.advance(HOUR)

    failed, fine = await force(api, gone["id"], staying["id"])

    assert [(e["code"], e["message"]) for e in failed["errors"]] == [
        ("CERTIFICATE_NOT_FOUND", NOT_FOUND_MESSAGE)
    ]
    assert failed["changed"] is False
    assert failed["message"] == NOT_FOUND_MESSAGE
    device = failed["device"]
    assert device["lastUpdateError"] == NOT_FOUND_MESSAGE
    assert device["sslDetails"] == gone["sslDetails"]
    assert device["rawFiles"] == gone["rawFiles"]
    assert schedule(device) == ("PT1H", failed_at + HOUR)
    assert notes(device)[0] == f"SSL certificate update failed: {NOT_FOUND_MESSAGE}"
    assert fine["errors"] == []
    assert fine["message"] == UPDATED
    assert fine["device"]["lastUpdateError"] is None


async def test_a_pem_device_is_decoded_again_without_the_network(
    api: GraphQLClient, world: World, clock: Clock
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, pem_certificate())
    connections = len(world.tls.connections)
    queries_before = len(world.dns.queries)
    checked_at = clock.advance(DAY)

    result = await force_one(api, device["id"])

    assert result == result | {"changed": False, "message": UPDATED, "errors": []}
    assert notes(result["device"])[0] == "SSL certificate details checked (PEM): no changes."
    assert at(result["device"]["lastUpdatedAt"]) == checked_at
    assert result["device"]["rawFiles"] == device["rawFiles"]
    assert len(world.tls.connections) == connections
    assert len(world.dns.queries) == queries_before


class InFlight:
    """A TLS probe counting the look-ups in flight (each held a little while)."""

    def __init__(self, inner: TlsProbe) -> None:
        self.inner = inner
        self.now = 0
        self.most = 0
        self.calls = 0

    async def fetch_chain(self, host: str, port: int) -> TlsHandshake:
        self.now += 1
        self.calls += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.05)
            return await self.inner.fetch_chain(host, port)
        finally:
            self.now -= 1


async def test_forced_updates_run_a_bounded_number_at_a_time(
    api: GraphQLClient,
    world: World,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org = await helpers.organization(api)
    ids = [(await helpers.ssl_device(api, org, world.host("good.test")))["id"] for _ in range(6)]
    probe = InFlight(services.tls)
    monkeypatch.setattr(services, "tls", probe)
    monkeypatch.setattr(updates, "FORCED_UPDATE_CONCURRENCY", 2)

    results = await force(api, *ids)

    assert [r["message"] for r in results] == [UPDATED] * 6
    assert probe.calls == 6
    assert probe.most == 2


async def test_at_most_100_devices_per_request(api: GraphQLClient) -> None:
    ids = [encode_id("Device", 1000 + i) for i in range(101)]
    results = await force(api, *ids[:100])
    assert len(results) == 100
    assert {e["code"] for r in results for e in r["errors"]} == {"NOT_FOUND"}

    body = await api.execute(FORCE_UPDATE, ids=ids)
    assert body.get("data") is None
    [error] = body["errors"]
    assert "100" in error["message"]
    assert error["extensions"]["code"] == "INVALID_INPUT"


# --- Save & Check for SSL Certificate ------------------------------------------------------------


async def test_save_and_check_saves_the_edit_and_retrieves(
    api: GraphQLClient, world: World, site: RenewableTlsServer, clock: Clock
) -> None:
    source = f"site.test:{site.port}"
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, source)
    renewed_at = clock.advance(DAY)
    renewed = certificate("site.test", expires_in=20 * DAY, now=renewed_at)
    site.renew("site.test", renewed)
    connections = len(site.connections)

    # A plain save does not retrieve.
    saved = (await api.ok(queries.UPDATE_DEVICE, id=device["id"], input={"name": "Renamed"}))[
        "updateDevice"
    ]
    assert saved["errors"] == []
    assert saved["device"]["name"] == "Renamed"
    assert saved["device"]["sslDetails"] == device["sslDetails"]
    assert len(site.connections) == connections

    checked = (
        await api.ok(
            queries.UPDATE_DEVICE,
            id=device["id"],
            input={"description": "Front door"},
            updateDetails=True,
        )
    )["updateDevice"]

    assert checked["errors"] == []
    updated = checked["device"]
    assert updated["name"] == "Renamed"
    assert updated["description"] == "Front door"
    assert at(updated["sslDetails"]["validUntil"]) == renewed_at + 20 * DAY
    assert schedule(updated) == ("PT48H", renewed_at + 48 * HOUR)
    assert notes(updated)[0].startswith(f"SSL certificate details updated from {source}: ")
    assert len(updated["rawFiles"]) == 2
    assert len(site.connections) == connections + 1
    assert await read(api, device["id"]) == updated
