"""What the alert tests share: staged probes, a recording notifier, a local HTTP receiver."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from models import (
    ActivityNote,
    Alert,
    AlertDelivery,
    DeviceCategory,
    OrganizationType,
    SecurityLevel,
)
from models.db import reader, transaction
from tests.fakes import pki
from tracking.alerts import Alerting, ChangeAlerts
from tracking.core import clock
from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.notices import Notice, TrialNotice
from tracking.core.notify_settings import NotifySettings
from tracking.core.registration import RegistrationDetails
from tracking.core.settings import Settings
from tracking.manage.access import Viewer, ensure_admin_user, viewer_for
from tracking.manage.devices import NewDevice, create_device
from tracking.manage.inventory import create_organization, ensure_system_data
from tracking.probes.dns import DnsLookup
from tracking.probes.notify import ChannelTarget, NotifyError
from tracking.probes.registration import (
    RegistrationFailed,
    RegistrationFound,
    RegistrationOutcome,
)
from tracking.probes.tls import TlsHandshake
from tracking.refresh.services import Services
from tracking.wiring import build_services

DAY = timedelta(days=1)


@dataclass
class StagedTls:
    """Serves, per host, the chain the test put there; a host in ``failing`` fails."""

    chains: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)

    def serve(self, host: str, leaf: pki.Issued, *chain: pki.Issued) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding

        self.chains[host] = tuple(c.cert.public_bytes(Encoding.DER) for c in (leaf, *chain))

    async def fetch_chain(self, host: str, port: int) -> TlsHandshake:
        if host in self.failing or host not in self.chains:
            raise ProbeError(ErrorCode.CERTIFICATE_NOT_FOUND)
        return TlsHandshake(
            host, port, "192.0.2.10", host, self.chains[host], "TLSv1.3", "X", clock.now()
        )


@dataclass
class StagedRegistration:
    outcomes: dict[str, RegistrationOutcome] = field(default_factory=dict)

    def found(self, domain: str, **details: Any) -> None:
        self.outcomes[domain] = RegistrationFound(
            RegistrationDetails(source="RDAP", **details), "RDAP", ()
        )

    async def lookup(self, domain: str) -> RegistrationOutcome:
        return self.outcomes.get(domain) or RegistrationFailed(())


class QuietDns:
    async def lookup(self, domain: str) -> DnsLookup:
        return DnsLookup(records=(), failures=(), nxdomain=False)


@dataclass
class Sent:
    channel: str
    kind: str
    message: str
    key: str
    notice: Notice | TrialNotice


@dataclass
class RecordingNotifier:
    """Records what it sends; channels named in ``failing`` fail, in ``slow`` take a while."""

    sent: list[Sent] = field(default_factory=list)
    failing: dict[str, str] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)

    async def send(
        self, channel: ChannelTarget, notice: Notice | TrialNotice, message_id: str, at: datetime
    ) -> None:
        if channel.name in self.slow:
            await asyncio.sleep(self.slow[channel.name])
        if channel.name in self.failing:
            raise NotifyError(self.failing[channel.name])
        self.sent.append(Sent(channel.name, channel.kind, notice.message, message_id, notice))
        self.finished.append(channel.name)


def staged_services(engine: Engine, tmp_path: Path, notifier: Any = None) -> Services:
    settings = Settings(
        database_url=str(engine.url),
        data_dir=tmp_path / "data",
        allow_private_targets=True,
        probe_timeout_s=2.0,
    )
    services = build_services(settings, engine, notify=NotifySettings(timeout_s=5.0))
    services.tls = StagedTls()
    services.registration = StagedRegistration()
    services.dns = QuietDns()
    services.roots_override = [pki.test_ca().root.cert]
    alerting = Alerting(NotifySettings(timeout_s=5.0), notifier or RecordingNotifier())
    services.subscribers = (ChangeAlerts(alerting),)
    return services


def admin_viewer(engine: Engine) -> Viewer:
    admin = ensure_admin_user(engine)
    with reader(engine) as session:
        level = session.get(SecurityLevel, admin.security_level_id)
    assert level is not None
    return viewer_for(admin, level)


def new_organization(engine: Engine, viewer: Viewer, name: str = "Acme") -> int:
    ensure_system_data(engine)
    organization = create_organization(
        engine, viewer=viewer, name=name, type=OrganizationType.CUSTOMER
    )
    assert organization.id is not None
    return organization.id


def pem_expiring(expires_at: datetime, cn: str = "pem.example.com") -> str:
    leaf = pki.test_ca().leaf(cn, not_before=expires_at - 90 * DAY, not_after=expires_at)
    return leaf.pem


def create(services: Services, viewer: Viewer, org: int, **kwargs: Any) -> int:
    category = kwargs.pop("category", DeviceCategory.SSL_CERTIFICATE)
    device = asyncio.run(
        create_device(
            services,
            viewer=viewer,
            new=NewDevice(organization_id=org, category=category, **kwargs),
        )
    )
    assert device.id is not None
    return device.id


def alerts_of(engine: Engine, device_id: int | None = None) -> list[Alert]:
    query = select(Alert).order_by(col(Alert.id))
    if device_id is not None:
        query = query.where(Alert.device_id == device_id)
    with reader(engine) as session:
        return list(session.exec(query).all())


def deliveries(engine: Engine) -> list[AlertDelivery]:
    with reader(engine) as session:
        return list(session.exec(select(AlertDelivery).order_by(col(AlertDelivery.id))).all())


def notes(engine: Engine, device_id: int) -> list[str]:
    with reader(engine) as session:
        rows = session.exec(
            select(ActivityNote.text)
            .where(ActivityNote.device_id == device_id)
            .order_by(col(ActivityNote.id))
        ).all()
    return list(rows)


def execute(engine: Engine, statement: Any) -> None:
    with transaction(engine) as session:
        session.execute(statement)


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# --- a local HTTP receiver ----------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records POSTs; answers ``status``; while ``hold`` is clear, keeps the request waiting."""

    address: tuple[str, int]
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    hold: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            receiver.arrived.set()
            receiver.hold.wait(60)
            receiver.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(receiver.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server.server_address[:2])  # type: ignore[arg-type]
    receiver.hold.set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.hold.set()
        server.shutdown()
        server.server_close()
