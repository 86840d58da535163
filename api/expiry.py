"""Devices by expiry for the dashboard: the DeviceOrder enum, cursors by expiry, the forecast."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta

import strawberry
from graphql import GraphQLError

from models import Device as DeviceRow
from tracking.manage import queries

DeviceOrder = strawberry.enum(
    queries.DeviceOrder,
    description="ID: creation order. EXPIRES_AT: soonest expiry first (expired ones first of "
    "all), devices without an expiry last.",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CURSOR = re.compile(r"DeviceByExpiry:(none|-?[0-9]{1,19}):([0-9]{1,18})")
_INVALID_CURSOR = "after is not a cursor of this connection in this order."


def expiry_cursor(device: DeviceRow) -> str:
    """An opaque cursor holding the (expires_at, id) a list by expiry continues after."""
    assert device.id is not None
    expires_at = device.expires_at
    micros = "none" if expires_at is None else str((expires_at - _EPOCH) // _MICROSECOND)
    return base64.b64encode(f"DeviceByExpiry:{micros}:{device.id}".encode()).decode()


def expiry_position(cursor: str) -> queries.ExpiryPosition:
    """The position an ``expiry_cursor`` holds; a GraphQL error for anything else."""
    try:
        text = base64.b64decode(cursor[:200].encode("ascii"), validate=True).decode("ascii")
        found = _CURSOR.fullmatch(text)
        if found is None or len(cursor) > 200:
            raise ValueError(cursor)
        micros, pk = found.groups()
        expires_at = None if micros == "none" else _EPOCH + int(micros) * _MICROSECOND
    except (binascii.Error, UnicodeError, ValueError, OverflowError):
        raise GraphQLError(_INVALID_CURSOR, extensions={"code": "INVALID_CURSOR"}) from None
    return queries.ExpiryPosition(expires_at, int(pk))


@strawberry.type(description="How many devices expire in one week (Monday 00:00 UTC onwards).")
class ExpiryWeek:
    week_start: datetime
    count: int


def check_weeks(weeks: int) -> int:
    if not 1 <= weeks <= queries.MAX_FORECAST_WEEKS:
        raise GraphQLError(
            f"weeks must be between 1 and {queries.MAX_FORECAST_WEEKS}.",
            extensions={"code": "INVALID_INPUT"},
        )
    return weeks
