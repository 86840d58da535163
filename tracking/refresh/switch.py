"""The Domain & SSL Tracking switch: off, no device is retrieved or refreshed on a schedule."""

from __future__ import annotations

from sqlmodel import Session

from models import AppSetting

TRACKING_ENABLED_KEY = "tracking_enabled"


def tracking_enabled(session: Session) -> bool:
    """Read once per session: every update of a batch asks it again."""
    if TRACKING_ENABLED_KEY not in session.info:
        setting = session.get(AppSetting, TRACKING_ENABLED_KEY)
        session.info[TRACKING_ENABLED_KEY] = setting is None or setting.value == "true"
    enabled: bool = session.info[TRACKING_ENABLED_KEY]
    return enabled


def store_tracking_enabled(session: Session, enabled: bool) -> None:
    session.info[TRACKING_ENABLED_KEY] = enabled
    setting = session.get(AppSetting, TRACKING_ENABLED_KEY)
    if setting is None:
        session.add(AppSetting(key=TRACKING_ENABLED_KEY, value="true" if enabled else "false"))
    else:
        setting.value = "true" if enabled else "false"
