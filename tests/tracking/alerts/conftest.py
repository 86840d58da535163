"""Fixtures of the alert tests: services with staged probes and a recording notifier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.support.clock import Clock
from tests.tracking.alerts.support import (
    RecordingNotifier,
    admin_viewer,
    new_organization,
    staged_services,
)
from tracking.core import clock
from tracking.manage.access import Viewer
from tracking.refresh.services import Services


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def services(engine: Engine, tmp_path: Path, notifier: RecordingNotifier) -> Services:
    return staged_services(engine, tmp_path, notifier)


@pytest.fixture
def viewer(services: Services) -> Viewer:
    return admin_viewer(services.engine)


@pytest.fixture
def org(services: Services, viewer: Viewer) -> int:
    return new_organization(services.engine, viewer)


@pytest.fixture
def moved_clock() -> Iterator[Clock]:
    # Noon: a day counted by the calendar is the same as one counted by the hour.
    frozen = Clock(clock.now().replace(hour=12, minute=0, second=0, microsecond=0))
    with clock.use_clock(frozen):
        yield frozen
