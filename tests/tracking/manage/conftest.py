"""The administrator as a viewer, for use cases called directly."""

from __future__ import annotations

import pytest

from models import SecurityLevel
from models.db import reader
from tracking.manage import access, inventory
from tracking.manage.access import Viewer
from tracking.refresh.services import Services


@pytest.fixture
def admin(services: Services) -> Viewer:
    inventory.ensure_system_data(services.engine)
    user = access.ensure_admin_user(services.engine)
    with reader(services.engine) as session:
        level = session.get(SecurityLevel, user.security_level_id)
    assert level is not None
    return access.viewer_for(user, level)
