"""Change and failure alerts, raised by the update that saw the change, in its transaction."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes

from models import DeviceCategory
from tests.fakes import pki
from tests.support.clock import Clock
from tests.tracking.alerts.support import (
    StagedRegistration,
    StagedTls,
    alerts_of,
    create,
    deliveries,
)
from tracking.core.alert_rules import ChannelKind
from tracking.manage import alerts as manage
from tracking.manage.access import Viewer
from tracking.probes.registration import RegistrationNotRegistered
from tracking.refresh.pipeline import update_audit
from tracking.refresh.services import Services

HOST = "shop.example.com"


def _tls(services: Services) -> StagedTls:
    assert isinstance(services.tls, StagedTls)
    return services.tls


def _serve(services: Services, cn: str = HOST, **kwargs: Any) -> pki.Issued:
    ca = pki.test_ca()
    leaf = ca.leaf(cn, **kwargs)
    _tls(services).serve(HOST, leaf, ca.intermediate)
    return leaf


def _refresh(services: Services, device: int) -> None:
    asyncio.run(update_audit(services, device, author="test"))


def _kinds(services: Services, device: int) -> list[tuple[str, str]]:
    return [(a.kind, a.state) for a in alerts_of(services.engine, device)]


def _host_device(services: Services, viewer: Viewer, org: int) -> int:
    _serve(services)
    return create(services, viewer, org, ssl_source=HOST, name="shop")


def test_a_new_certificate_is_announced_and_the_first_retrieval_is_not(
    services: Services, viewer: Viewer, org: int
) -> None:
    channel, _ = asyncio.run(
        manage.create_channel(
            services,
            viewer=viewer,
            new=manage.NewChannel("all", ChannelKind.EMAIL, None, email_to=["a@example.com"]),
        )
    )
    manage.set_policy(
        services.engine, viewer=viewer, changes=manage.PolicyChanges(None, channel_ids=[channel.id])
    )
    device = _host_device(services, viewer, org)
    assert alerts_of(services.engine) == []  # first retrieval
    _refresh(services, device)
    assert alerts_of(services.engine) == []  # unchanged

    new = _serve(services, serial=424242)
    _refresh(services, device)
    (alert,) = alerts_of(services.engine, device)
    assert (alert.kind, alert.severity, alert.state) == ("CERTIFICATE_CHANGED", "INFO", "OPEN")
    assert alert.message.startswith("Certificate shop was replaced: SHA-256 fingerprint ")
    fingerprint = new.cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert alert.message.endswith(f"→ {fingerprint}.")
    assert [(d.alert_id, d.channel_id) for d in deliveries(services.engine)] == [
        (alert.id, channel.id)
    ]


def test_trust_and_host_name_verdicts_turning_bad_are_critical(
    services: Services, viewer: Viewer, org: int
) -> None:
    device = _host_device(services, viewer, org)
    stranger = pki.issue(pki.name(HOST), dns_names=["other.example.com"])  # self-signed
    _tls(services).serve(HOST, stranger)
    _refresh(services, device)
    alerts = {a.kind: a for a in alerts_of(services.engine, device)}
    assert set(alerts) == {"CERTIFICATE_CHANGED", "CHAIN_UNTRUSTED", "HOSTNAME_MISMATCH"}
    assert alerts["CHAIN_UNTRUSTED"].severity == "CRITICAL"
    assert (
        alerts["CHAIN_UNTRUSTED"].message == "The certificate chain of shop is no longer trusted."
    )
    assert (
        alerts["HOSTNAME_MISMATCH"].message == "Certificate shop no longer matches its host name."
    )


def test_notify_on_change_off_silences_changes_but_not_failures(
    services: Services, viewer: Viewer, org: int
) -> None:
    manage.set_policy(
        services.engine,
        viewer=viewer,
        changes=manage.PolicyChanges(org, notify_on_change=False, failures_before_alert=1),
    )
    device = _host_device(services, viewer, org)
    _serve(services, serial=777)
    _refresh(services, device)
    assert alerts_of(services.engine) == []
    _tls(services).failing.add(HOST)
    _refresh(services, device)
    assert _kinds(services, device) == [("UPDATE_FAILING", "OPEN")]


def test_update_failing_once_per_streak_and_resolved_by_the_next_success(
    services: Services, viewer: Viewer, org: int
) -> None:
    device = _host_device(services, viewer, org)
    _tls(services).failing.add(HOST)
    _refresh(services, device)
    _refresh(services, device)
    assert alerts_of(services.engine) == []
    _refresh(services, device)  # the third failure in a row (the default)
    (alert,) = alerts_of(services.engine, device)
    assert (alert.kind, alert.severity) == ("UPDATE_FAILING", "WARNING")
    assert alert.message == (
        "Certificate shop failed to update 3 times in a row: "
        "SSL Certificate not found. Please check spelling and try again."
    )
    _refresh(services, device)
    assert len(alerts_of(services.engine, device)) == 1  # once per streak

    _tls(services).failing.clear()
    _refresh(services, device)
    assert _kinds(services, device) == [("UPDATE_FAILING", "RESOLVED")]
    _tls(services).failing.add(HOST)
    for _ in range(3):
        _refresh(services, device)
    assert _kinds(services, device) == [("UPDATE_FAILING", "RESOLVED"), ("UPDATE_FAILING", "OPEN")]


def test_a_muted_device_raises_nothing(services: Services, viewer: Viewer, org: int) -> None:
    device = _host_device(services, viewer, org)
    manage.set_alerts_muted(services.engine, viewer=viewer, device_id=device, muted=True)
    _serve(services, serial=99)
    _tls(services).failing.add(HOST)
    for _ in range(4):
        _refresh(services, device)
    _tls(services).failing.clear()
    _refresh(services, device)
    assert alerts_of(services.engine) == []


def test_domain_registration_changes(
    services: Services, viewer: Viewer, org: int, moved_clock: Clock
) -> None:
    registry = services.registration
    assert isinstance(registry, StagedRegistration)
    details: dict[str, Any] = {
        "registrar": "Good Registrar",
        "expires_at": moved_clock.now + timedelta(days=300),
        "name_servers": ("ns1.example.net", "ns2.example.net"),
        "statuses": ("client transfer prohibited",),
    }
    registry.found("example.org", **details)
    device = create(
        services,
        viewer,
        org,
        category=DeviceCategory.DOMAIN,
        domain="example.org",
        create_ssl_certificate=False,
    )
    moved = {**details, "registrar": "Other Registrar", "name_servers": ("ns.evil.example",)}
    registry.found("example.org", **moved)
    _refresh(services, device)
    alerts = {a.kind: a for a in alerts_of(services.engine, device)}
    assert alerts["REGISTRATION_CHANGED"].message == (
        "Domain example.org: registrar changed from Good Registrar to Other Registrar."
    )
    assert alerts["NAME_SERVERS_CHANGED"].message == (
        "Domain example.org: name servers changed from ns1.example.net, ns2.example.net "
        "to ns.evil.example."
    )
    registry.found("example.org", **{**moved, "statuses": ("client hold",)})
    _refresh(services, device)
    changed = alerts_of(services.engine, device)[-1]
    assert changed.kind == "REGISTRATION_CHANGED"
    assert "statuses changed from client transfer prohibited to client hold" in changed.message

    registry.outcomes["example.org"] = RegistrationNotRegistered("RDAP")
    _refresh(services, device)
    gone = alerts_of(services.engine, device)[-1]
    assert (gone.kind, gone.severity, gone.message) == (
        "DOMAIN_NOT_REGISTERED",
        "CRITICAL",
        "Domain example.org is no longer registered: the registry has no record of it.",
    )


def test_an_unchanged_refresh_costs_the_alerts_no_statement(
    services: Services, viewer: Viewer, org: int
) -> None:
    device = _host_device(services, viewer, org)
    seen: list[str] = []

    def record(_c: object, _cur: object, statement: str, *_: object) -> None:
        seen.append(statement)

    sa.event.listen(services.engine, "before_cursor_execute", record)
    try:
        _refresh(services, device)
    finally:
        sa.event.remove(services.engine, "before_cursor_execute", record)
    assert seen and not [s for s in seen if "alerts " in s or "alert_" in s.split("FROM")[-1]]
