"""Dagster tests: a throw-away DAGSTER_HOME and instance, devices served by the local world."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from models import OrganizationType, SecurityLevel
from models.db import reader
from orchestration.resources import TrackingResource
from tests.orchestration.helpers import Devices
from tests.support.clock import Clock
from tracking.core import clock
from tracking.manage.access import Viewer, ensure_admin_user, viewer_for
from tracking.manage.inventory import create_organization, ensure_system_data
from tracking.refresh.services import Services


@pytest.fixture(autouse=True)
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def resource(services: Services) -> TrackingResource:
    return TrackingResource.for_services(services)


@pytest.fixture
def viewer(services: Services) -> Viewer:
    admin = ensure_admin_user(services.engine)
    with reader(services.engine) as session:
        level = session.get(SecurityLevel, admin.security_level_id)
    assert level is not None
    return viewer_for(admin, level)


@pytest.fixture
def org(services: Services, viewer: Viewer) -> int:
    ensure_system_data(services.engine)
    organization = create_organization(
        services.engine, viewer=viewer, name="Acme", type=OrganizationType.CUSTOMER
    )
    assert organization.id is not None
    return organization.id


@pytest.fixture
def moved_clock() -> Iterator[Clock]:
    frozen = Clock(clock.now().replace(microsecond=0))
    with clock.use_clock(frozen):
        yield frozen


@pytest.fixture
def devices(services: Services, viewer: Viewer, org: int) -> Devices:
    return Devices(services, viewer, org)
