"""GET /metrics: who may scrape, the lines of known devices, and the update counters."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from tests.api import helpers
from tests.api.test_auth import _user_token
from tests.conftest import ADMIN_TOKEN, GraphQLClient, World
from tests.deploy.test_monitoring import promtool
from tests.fakes import pki
from tests.fakes.tls_server import GOOD, SELF_SIGNED, WRONG_HOST, standard_certificates
from tracking.alerts import sweep
from tracking.core import clock
from tracking.core.ids import decode_pk
from tracking.metrics import Exposition, MetricsCollector
from tracking.refresh.pipeline import update_many
from tracking.refresh.services import Services

FORCE_UPDATE = """
mutation($ids: [ID!]!) {
  forceUpdate(ids: $ids) { results { deviceId changed message errors { code message } } }
}"""
DEVICE = "query($id: ID!) { device(id: $id) { sslDetails { chainTrusted hostnameMatches } } }"
INTERMEDIATE = "dstrack Test Intermediate CA"
RDAP_DOMAINS = Path(__file__).parent.parent / "fixtures" / "registry" / "rdap" / "domains"
OUTCOMES = ("updated", "unchanged", "failed")


async def scrape(api: GraphQLClient, token: str | None = ADMIN_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await api.http.get("/metrics", headers=headers)


async def lines(api: GraphQLClient) -> list[str]:
    response = await scrape(api)
    assert response.status_code == 200, response.text
    return response.text.splitlines()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, parsed by prometheus-client's own parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, metric: str, **labels: str) -> float:
    return samples(text)[(metric, frozenset(labels.items()))]


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def go(seconds: int) -> str:
    """A Unix time as the text format writes it: Go's shortest float ("1.7985024e+09")."""
    digits = str(seconds)
    return f"{digits[0]}.{digits[1:]}".rstrip("0.") + f"e+{len(digits) - 1:02d}"


# --- who may scrape -------------------------------------------------------------------------


async def test_metrics_need_an_administrators_token(api: GraphQLClient) -> None:
    for token in (None, "not-a-token", ADMIN_TOKEN + "x"):
        response = await scrape(api, token)
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"] == "Bearer"
        assert "dstrack_" not in response.text
    user = await _user_token(api, "Operator")
    refused = await scrape(api, user)
    assert refused.status_code == 403
    assert "dstrack_" not in refused.text
    admin_level_user = await _user_token(api, "Monitoring", isAdmin=True)
    for token in (ADMIN_TOKEN, admin_level_user):
        response = await scrape(api, token)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "# TYPE dstrack_updates_total counter" in response.text.splitlines()


# --- the devices' gauges --------------------------------------------------------------------


async def test_a_pem_certificate_is_exported_with_its_dates(api: GraphQLClient) -> None:
    org = await helpers.organization(api, 'Acme "Labs" \\ Co')
    ca = pki.test_ca()
    leaf = ca.leaf(
        "billing.example",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2027, 1, 1, tzinfo=UTC),
    )
    device = await helpers.ssl_device(api, org, leaf.pem, name='Billing "PEM" \\')
    assert decode_pk(device["id"], "Device") == 1
    text = await lines(api)
    labels = (
        'common_name="billing.example",device_id="RGV2aWNlOjE=",host="",'
        'issuer="dstrack Test Intermediate CA",name="Billing \\"PEM\\" \\\\",'
        'organization="Acme \\"Labs\\" \\\\ Co",port=""'
    )
    assert f"dstrack_certificate_not_after_timestamp_seconds{{{labels}}} 1.7987616e+09" in text
    assert f"dstrack_certificate_not_before_timestamp_seconds{{{labels}}} 1.7672256e+09" in text
    short = (
        'device_id="RGV2aWNlOjE=",name="Billing \\"PEM\\" \\\\",'
        'organization="Acme \\"Labs\\" \\\\ Co"'
    )
    trusted = device["sslDetails"]["chainTrusted"]
    assert f"dstrack_certificate_chain_trusted{{{short}}} {float(trusted)}" in text
    assert f'dstrack_device_update_failing{{category="SSL_CERTIFICATE",{short}}} 0.0' in text
    # A PEM has no host to match: no sample rather than a false "mismatch".
    assert not any(line.startswith("dstrack_certificate_hostname_matches{") for line in text)


async def test_host_certificates_show_their_verdicts(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api, "Acme")
    devices = {
        host: await helpers.ssl_device(api, org, world.host(host), name=host)
        for host in (GOOD, WRONG_HOST, SELF_SIGNED)
    }
    text = await lines(api)
    verdicts = {GOOD: (1, 1), WRONG_HOST: (1, 0), SELF_SIGNED: (0, 1)}
    for host, device in devices.items():
        short = f'device_id="{device["id"]}",name="{host}",organization="Acme"'
        trusted, matches = verdicts[host]
        assert f"dstrack_certificate_chain_trusted{{{short}}} {trusted}.0" in text
        assert f"dstrack_certificate_hostname_matches{{{short}}} {matches}.0" in text
        cert = standard_certificates()[host].leaf.cert
        issuer = host if host == SELF_SIGNED else INTERMEDIATE
        common_name = "other.test" if host == WRONG_HOST else host
        labels = (
            f'common_name="{common_name}",device_id="{device["id"]}",host="{host}",'
            f'issuer="{issuer}",name="{host}",organization="Acme",port="{world.tls_port}"'
        )
        not_after = epoch(cert.not_valid_after_utc)
        assert (
            f"dstrack_certificate_not_after_timestamp_seconds{{{labels}}} {go(not_after)}" in text
        )
        updated = value(
            "\n".join(text),
            "dstrack_device_last_update_timestamp_seconds",
            category="SSL_CERTIFICATE",
            device_id=device["id"],
            name=host,
            organization="Acme",
        )
        assert abs(updated - datetime.now(UTC).timestamp()) < 600


async def test_a_domain_shows_its_registration_expiry(api: GraphQLClient, world: World) -> None:
    world.rdap.add_domain("example.com", RDAP_DOMAINS / "verisign__example.com.json")
    world.add_domain("example.com")
    org = await helpers.organization(api, "Acme")
    payload = await helpers.create_device(
        api, organizationId=org, category="DOMAIN", domain="example.com", createSslCertificate=False
    )
    assert payload["errors"] == []
    device_id = payload["device"]["id"]
    text = await lines(api)
    labels = (
        f'device_id="{device_id}",domain="example.com",name="example.com",organization="Acme",'
        'registrar="RESERVED-Internet Assigned Numbers Authority"'
    )
    # The registry's expiration event: 2021-08-13T04:00:00Z.
    assert f"dstrack_domain_expiry_timestamp_seconds{{{labels}}} 1.6288272e+09" in text
    short = f'category="DOMAIN",device_id="{device_id}",name="example.com",organization="Acme"'
    assert f"dstrack_device_update_failing{{{short}}} 0.0" in text


async def test_inactive_devices_are_absent_and_every_organization_is_there(
    api: GraphQLClient,
) -> None:
    acme = await helpers.organization(api, "Acme")
    vendor = await helpers.organization(api, "Supplier", type="VENDOR")
    pem = pki.test_ca().leaf("pem.example").pem
    shown = await helpers.ssl_device(api, acme, pem, name="shown")
    other = await helpers.ssl_device(api, vendor, pem, name="vendor's")
    hidden = await helpers.ssl_device(api, acme, pem, name="hidden", active=False)
    text = (await scrape(api)).text
    assert f'device_id="{shown["id"]}"' in text
    assert f'device_id="{other["id"]}",name="vendor\'s",organization="Supplier"' in text
    assert hidden["id"] not in text
    assert "hidden" not in text


async def test_the_route_streams_what_generate_latest_renders(
    api: GraphQLClient, world: World, services: Services
) -> None:
    org = await helpers.organization(api, "Acme")
    for host in (GOOD, WRONG_HOST):
        await helpers.ssl_device(api, org, world.host(host))
    registry = CollectorRegistry()
    registry.register(MetricsCollector(services.engine))
    response = await scrape(api)
    assert response.content == generate_latest(registry)
    # Prometheus's own linter finds nothing to say about it.
    command = [promtool(), "check", "metrics"]
    done = await asyncio.to_thread(
        subprocess.run, command, input=response.content, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the update counters --------------------------------------------------------------------


def counts(text: str, category: str = "SSL_CERTIFICATE") -> dict[str, float]:
    return {o: value(text, "dstrack_updates_total", category=category, outcome=o) for o in OUTCOMES}


def histogram_count(text: str, category: str = "SSL_CERTIFICATE") -> float:
    return value(text, "dstrack_update_duration_seconds_count", category=category)


async def test_counters_count_forced_updates_and_refreshes(
    api: GraphQLClient, world: World, services: Services
) -> None:
    before = (await scrape(api)).text
    assert counts(before) == {"updated": 0, "unchanged": 0, "failed": 0}
    assert counts(before, "DOMAIN") == {"updated": 0, "unchanged": 0, "failed": 0}
    assert histogram_count(before) == 0
    org = await helpers.organization(api, "Acme")
    good = await helpers.ssl_device(api, org, world.host(GOOD), name="good")
    broken = await helpers.ssl_device(api, org, world.host(WRONG_HOST), name="broken")
    text = (await scrape(api)).text
    # First retrievals are updates, timed like any other.
    assert counts(text) == {"updated": 2, "unchanged": 0, "failed": 0}
    assert histogram_count(text) == 2

    # The second device's server goes away: its updates fail.
    pk = decode_pk(broken["id"], "Device")
    with services.engine.begin() as connection:
        connection.execute(sa.text("UPDATE devices SET ssl_port = 1 WHERE id = :id"), {"id": pk})
    data = await api.ok(FORCE_UPDATE, ids=[good["id"], broken["id"]])
    assert [r["errors"] == [] for r in data["forceUpdate"]["results"]] == [True, False]
    text = (await scrape(api)).text
    assert counts(text) == {"updated": 2, "unchanged": 1, "failed": 1}
    failing = f'category="SSL_CERTIFICATE",device_id="{broken["id"]}",name="broken"'
    assert f'dstrack_device_update_failing{{{failing},organization="Acme"}} 1.0' in text

    # A scheduled refresh (Dagster's path) counts the same way, in the same rows.
    ids = [decode_pk(good["id"], "Device"), pk]
    await update_many(services, [i for i in ids if i is not None], author="refresh")
    text = (await scrape(api)).text
    assert counts(text) == {"updated": 2, "unchanged": 2, "failed": 2}
    # Each creation, forced update and refresh asked the network once and was timed.
    assert histogram_count(text) == 6
    inf = value(
        text, "dstrack_update_duration_seconds_bucket", category="SSL_CERTIFICATE", le="+Inf"
    )
    assert inf == 6
    assert value(text, "dstrack_update_duration_seconds_sum", category="SSL_CERTIFICATE") > 0


@pytest.mark.parametrize("category", ["SSL_CERTIFICATE", "DOMAIN"])
async def test_every_category_and_outcome_starts_at_zero(api: GraphQLClient, category: str) -> None:
    text = (await scrape(api)).text
    assert counts(text, category) == dict.fromkeys(OUTCOMES, 0)
    assert histogram_count(text, category) == 0


async def test_health_answers_while_a_scrape_is_rendered(
    api: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exposition is rendered in a worker thread: the event loop keeps serving."""
    rendering, release = threading.Event(), threading.Event()
    render = MetricsCollector.exposition

    def slow(self: MetricsCollector) -> Exposition:
        rendering.set()
        release.wait(30)
        return render(self)

    monkeypatch.setattr(MetricsCollector, "exposition", slow)
    pending = asyncio.create_task(scrape(api))
    try:
        assert await asyncio.to_thread(rendering.wait, 30)
        health = await asyncio.wait_for(api.http.get("/healthz"), timeout=30)
        assert health.status_code == 200
        assert not pending.done()
    finally:
        release.set()
    assert (await pending).status_code == 200


async def test_open_alerts_are_counted_by_kind_and_severity(
    api: GraphQLClient, services: Services
) -> None:
    org = await helpers.organization(api, "Acme")
    ca = pki.test_ca()
    expired = ca.leaf("expired.example", not_before=pki.NOW - timedelta(days=60), days=30)
    await helpers.ssl_device(api, org, expired.pem, name="expired")
    assert "dstrack_alerts_open{" not in (await scrape(api)).text  # none raised yet
    sweep(services.engine, now=clock.now())  # the expiry sweep raises EXPIRED
    text = (await scrape(api)).text
    with services.engine.connect() as connection:
        severity = connection.execute(sa.text("SELECT severity FROM alerts")).scalar_one()
    assert f'dstrack_alerts_open{{kind="EXPIRED",severity="{severity}"}} 1.0' in text
    with services.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alerts SET state = 'ACKNOWLEDGED'"))
    assert "dstrack_alerts_open{" not in (await scrape(api)).text
