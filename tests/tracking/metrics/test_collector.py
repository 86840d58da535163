"""The collector: the streamed exposition is exactly what ``generate_latest`` renders, in
batches and spooled; values and labels as the devices have them; open alerts when asked."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString
from sqlalchemy.engine import Engine

from models import Device, DomainDetailsRecord, Organization, Product, SslDetailsRecord
from tracking.core.ids import encode_id
from tracking.metrics import MetricsCollector, collector, open_alert_counts
from tracking.metrics.collector import duration_family
from tracking.metrics.gauges import go_float
from tracking.metrics.readers import DurationBucket

DEVICES: sa.Table = Device.__table__  # type: ignore[attr-defined]
ORGANIZATIONS: sa.Table = Organization.__table__  # type: ignore[attr-defined]
PRODUCTS: sa.Table = Product.__table__  # type: ignore[attr-defined]
SSL_DETAILS: sa.Table = SslDetailsRecord.__table__  # type: ignore[attr-defined]
DOMAIN_DETAILS: sa.Table = DomainDetailsRecord.__table__  # type: ignore[attr-defined]
NOW = datetime(2026, 12, 7, 12, 30, 15, 750_000, tzinfo=UTC)
TRICKY = 'Ünïcode "quoted" back\\slash\nnew line'


def device(pk: int, category: str, **values: Any) -> dict[str, Any]:
    row = {
        "id": pk,
        "category": category,
        "name": f"device {pk}",
        "active": True,
        "organization_id": 1 + pk % 2,
        "product_id": 1,
        "created_at": NOW,
        "modified_at": NOW,
        "last_updated_at": NOW,
        "consecutive_failures": 0,
        "ssl_source_kind": None,
        "ssl_host": None,
        "ssl_port": None,
        "ssl_pem": None,
        "domain": None,
    }
    return row | values


def ssl(pk: int, **values: Any) -> dict[str, Any]:
    row = {
        "device_id": pk,
        "common_name": f"host{pk}.example",
        "valid_from": NOW - timedelta(days=10),
        "valid_until": NOW + timedelta(days=pk),
        "issued_by": "Example CA",
        "serial_number": "01",
        "signature_algorithm": "sha256WithRSAEncryption",
        "subject_alternative_names": [],
        "fingerprint_sha256": "00",
        "chain_pem": "",
        "trusted": pk % 3 != 0,
        "hostname_matches": pk % 4 != 0,
        "retrieved_at": NOW,
    }
    return row | values


def domain_details(pk: int, **values: Any) -> dict[str, Any]:
    row = {"device_id": pk, "registrar": "Registrar", "expires_at": NOW, "source": "RDAP"}
    return row | values


@pytest.fixture
def inventory(engine: Engine) -> Engine:
    """Twelve devices of every kind in two organizations, some with labels to escape."""
    with engine.begin() as connection:
        connection.execute(
            ORGANIZATIONS.insert(),
            [
                {"id": 1, "name": "Acme", "type": "CUSTOMER", "created_at": NOW},
                {"id": 2, "name": TRICKY, "type": "VENDOR", "created_at": NOW},
            ],
        )
        connection.execute(
            PRODUCTS.insert(), [{"id": 1, "name": "P", "is_system": False, "created_at": NOW}]
        )
        host = {"ssl_source_kind": "HOST", "ssl_host": "host.example", "ssl_port": 8443}
        connection.execute(
            DEVICES.insert(),
            [
                device(1, "SSL_CERTIFICATE", **host),
                device(2, "SSL_CERTIFICATE", name=TRICKY, organization_id=2, **host),
                device(3, "SSL_CERTIFICATE", ssl_source_kind="PEM", ssl_pem="(pem)"),
                device(4, "SSL_CERTIFICATE", consecutive_failures=3, **host),
                device(5, "SSL_CERTIFICATE", active=False, **host),
                device(6, "SSL_CERTIFICATE", last_updated_at=None, **host),  # no details yet
                device(7, "DOMAIN", domain="example.com"),
                device(8, "DOMAIN", domain="example.org", consecutive_failures=1),
                device(9, "DOMAIN", domain="example.net"),  # no registration expiry
                device(10, "STANDARD"),
                device(11, "DOMAIN", domain="example.de", active=False),
                device(12, "SSL_CERTIFICATE", **host),
            ],
        )
        connection.execute(
            SSL_DETAILS.insert(),
            [
                ssl(1),
                ssl(2, common_name=TRICKY, issued_by=None),
                ssl(3, hostname_matches=None),
                ssl(4),
                ssl(5),
                ssl(12, valid_from=datetime(1950, 1, 1, tzinfo=UTC)),
            ],
        )
        connection.execute(
            DOMAIN_DETAILS.insert(),
            [
                domain_details(7, registrar=TRICKY),
                domain_details(8, registrar=None),
                domain_details(9, expires_at=None),
                domain_details(11),
            ],
        )
    return engine


def generated(engine: Engine, **kwargs: Any) -> bytes:
    registry = CollectorRegistry()
    registry.register(MetricsCollector(engine, **kwargs))
    return generate_latest(registry)


def streamed(engine: Engine, **kwargs: Any) -> bytes:
    return b"".join(MetricsCollector(engine, **kwargs).exposition().chunks())


@pytest.mark.parametrize("batch_size", [1, 2, 5000])
def test_the_stream_is_what_generate_latest_renders(
    inventory: Engine, batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector, "SPOOL_BYTES", 100)  # most gauges go to disk
    monkeypatch.setattr(collector, "READ_BYTES", 64)
    text = streamed(inventory, batch_size=batch_size)
    assert text == generated(inventory)
    names = [line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names)) == 10  # each metric's lines together, once


def test_samples_are_the_devices_values(inventory: Engine) -> None:
    families = {f.name: f for f in text_string_to_metric_families(streamed(inventory).decode())}

    def by_device(name: str) -> dict[int, float]:
        return {int(encode_id_pk(s.labels["device_id"])): s.value for s in families[name].samples}

    not_after = by_device("dstrack_certificate_not_after_timestamp_seconds")
    assert not_after == {
        pk: math.floor((NOW + timedelta(days=pk)).timestamp()) for pk in (1, 2, 3, 4, 12)
    }
    not_before = by_device("dstrack_certificate_not_before_timestamp_seconds")
    assert not_before[12] == datetime(1950, 1, 1, tzinfo=UTC).timestamp()
    assert by_device("dstrack_certificate_chain_trusted") == {1: 1, 2: 1, 3: 0, 4: 1, 12: 0}
    assert by_device("dstrack_certificate_hostname_matches") == {1: 1, 2: 1, 4: 0, 12: 0}
    assert by_device("dstrack_domain_expiry_timestamp_seconds") == {
        7: math.floor(NOW.timestamp()),
        8: math.floor(NOW.timestamp()),
    }
    assert by_device("dstrack_device_update_failing") == {
        1: 0, 2: 0, 3: 0, 4: 1, 6: 0, 7: 0, 8: 1, 9: 0, 12: 0,
    }  # fmt: skip
    assert set(by_device("dstrack_device_last_update_timestamp_seconds")) == {
        1, 2, 3, 4, 7, 8, 9, 12,
    }  # fmt: skip
    [tricky] = [
        s.labels
        for s in families["dstrack_certificate_not_after_timestamp_seconds"].samples
        if s.labels["device_id"] == encode_id("Device", 2)
    ]
    assert tricky == {
        "device_id": encode_id("Device", 2),
        "organization": TRICKY,
        "name": TRICKY,
        "host": "host.example",
        "port": "8443",
        "common_name": TRICKY,
        "issuer": "",
    }
    [domain] = [
        s.labels
        for s in families["dstrack_domain_expiry_timestamp_seconds"].samples
        if s.labels["device_id"] == encode_id("Device", 8)
    ]
    assert domain["registrar"] == "" and domain["domain"] == "example.org"


def encode_id_pk(device_id: str) -> int:
    pk = next(i for i in range(1, 20) if encode_id("Device", i) == device_id)
    return pk


def test_exposition_files_are_closed_once_read(inventory: Engine) -> None:
    exposition = MetricsCollector(inventory).exposition()
    files = [p for p in exposition.parts if not isinstance(p, bytes)]
    assert files and not any(f.closed for f in files)
    b"".join(exposition.chunks())
    assert all(f.closed for f in files)


@pytest.mark.parametrize(
    "number",
    [0, 1, 7, 999_999, 1_000_000, 1_767_225_600, 1_798_761_600, 10**14 + 1, -631_152_000, 0.5, 2.5],
)
def test_values_are_written_as_prometheus_client_writes_them(number: float) -> None:
    assert go_float(number) == floatToGoString(number)
    assert go_float(float(number)) == floatToGoString(float(number))


def test_a_bucket_no_longer_configured_counts_in_the_next_one_above() -> None:
    family = duration_family(
        [
            DurationBucket("SSL_CERTIFICATE", "0.05", 2, 0.05),
            DurationBucket("SSL_CERTIFICATE", "0.3", 1, 0.3),  # an old bound
            DurationBucket("SSL_CERTIFICATE", "+Inf", 1, 40.0),
        ]
    )
    buckets = {
        s.labels["le"]: s.value
        for s in family.samples
        if s.name.endswith("_bucket") and s.labels["category"] == "SSL_CERTIFICATE"
    }
    assert buckets["0.05"] == 2 and buckets["0.25"] == 2 and buckets["0.5"] == 3
    assert buckets["+Inf"] == 4
    totals = {
        s.name: s.value for s in family.samples if s.labels == {"category": "SSL_CERTIFICATE"}
    }
    assert totals["dstrack_update_duration_seconds_count"] == 4
    assert totals["dstrack_update_duration_seconds_sum"] == pytest.approx(40.35)


def test_open_alerts_by_kind_and_severity(engine: Engine) -> None:
    """Any table with columns kind, severity and state (the app's: ``alerts``)."""
    alerts = sa.Table(
        "test_alerts",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32)),
        sa.Column("severity", sa.String(16)),
        sa.Column("state", sa.String(16)),
    )
    alerts.create(engine)
    try:
        with engine.begin() as connection:
            connection.execute(
                alerts.insert(),
                [
                    {"kind": "EXPIRING", "severity": "WARNING", "state": "OPEN"},
                    {"kind": "EXPIRING", "severity": "WARNING", "state": "OPEN"},
                    {"kind": "EXPIRING", "severity": "WARNING", "state": "RESOLVED"},
                    {"kind": "EXPIRED", "severity": "CRITICAL", "state": "OPEN"},
                    {"kind": "CHAIN_UNTRUSTED", "severity": "CRITICAL", "state": "ACKNOWLEDGED"},
                ],
            )
        with engine.connect() as connection:
            assert open_alert_counts(connection, alerts) == [
                ("EXPIRED", "CRITICAL", 1),
                ("EXPIRING", "WARNING", 2),
            ]
        text = streamed(engine, alerts=alerts).decode().splitlines()
        assert 'dstrack_alerts_open{kind="EXPIRING",severity="WARNING"} 2.0' in text
        assert 'dstrack_alerts_open{kind="EXPIRED",severity="CRITICAL"} 1.0' in text
        assert streamed(engine, alerts=alerts) == generated(engine, alerts=alerts)
        assert b"dstrack_alerts_open" not in streamed(engine, alerts=None)
    finally:
        alerts.drop(engine)
