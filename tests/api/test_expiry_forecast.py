"""`expiryForecast`: devices expiring per week, Monday 00:00 UTC to Monday, as the viewer sees."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api import helpers
from tests.api.expiry_support import certificate, deactivate, restricted_token, standard
from tests.api.test_query_count import counting
from tests.conftest import GraphQLClient
from tests.support.clock import Clock
from tracking.core import clock
from tracking.manage.queries import week_start
from tracking.refresh.services import Services

FORECAST = """
query($weeks: Int, $org: ID) {
  expiryForecast(weeks: $weeks, organizationId: $org) { weekStart count }
}"""

UTC = dt.UTC
NOW = dt.datetime(2030, 1, 9, 15, 30, tzinfo=UTC)  # a Wednesday
MONDAY = dt.datetime(2030, 1, 7, tzinfo=UTC)  # the start of its week
WEEK = dt.timedelta(weeks=1)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture(autouse=True)
def _fixed_now() -> Iterator[None]:
    with clock.use_clock(Clock(NOW)):
        yield


async def _forecast(api: GraphQLClient, **variables: Any) -> list[dict[str, Any]]:
    weeks: list[dict[str, Any]] = (await api.ok(FORECAST, **variables))["expiryForecast"]
    return weeks


def _counts(weeks: list[dict[str, Any]]) -> list[int]:
    return [week["count"] for week in weeks]


def test_weeks_start_on_monday_at_midnight_utc() -> None:
    assert week_start(NOW) == MONDAY
    assert week_start(MONDAY) == MONDAY
    assert week_start(MONDAY - SECOND) == MONDAY - WEEK
    # 01:00 on Monday in UTC+2 is still Sunday in UTC.
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert week_start(dt.datetime(2030, 1, 14, 1, 0, tzinfo=plus_two)) == MONDAY


async def test_devices_are_counted_in_the_week_they_expire(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    await certificate(api, org, "expired last week", MONDAY - SECOND)  # not counted
    await certificate(api, org, "expired on Monday", MONDAY)  # week 0: the current one
    await certificate(api, org, "later today", NOW + dt.timedelta(hours=2))  # week 0
    await certificate(api, org, "Sunday night", MONDAY + WEEK - SECOND)  # week 0
    await certificate(api, org, "next Monday", MONDAY + WEEK)  # week 1
    await certificate(api, org, "in week 3 (a)", MONDAY + 3 * WEEK + dt.timedelta(days=2))
    await certificate(api, org, "in week 3 (b)", MONDAY + 3 * WEEK + dt.timedelta(days=6))
    await certificate(api, org, "last counted week", MONDAY + 26 * WEEK - SECOND)  # week 25
    await certificate(api, org, "beyond", MONDAY + 26 * WEEK)  # not counted
    await standard(api, org, "no expiry")  # not counted
    switched_off = await certificate(api, org, "inactive", MONDAY + WEEK)
    await deactivate(api, switched_off)  # not counted

    weeks = await _forecast(api)

    assert len(weeks) == 26
    starts = [dt.datetime.fromisoformat(week["weekStart"]) for week in weeks]
    assert starts == [MONDAY + i * WEEK for i in range(26)]
    assert weeks[0]["weekStart"] == "2030-01-07T00:00:00+00:00"
    expected = [0] * 26
    expected[0], expected[1], expected[3], expected[25] = 3, 1, 2, 1
    assert _counts(weeks) == expected
    assert _counts(await _forecast(api, weeks=4)) == [3, 1, 0, 2]


async def test_the_forecast_of_one_organization(api: GraphQLClient) -> None:
    acme = await helpers.organization(api, "Acme")
    globex = await helpers.organization(api, "Globex")
    await certificate(api, acme, "acme", NOW + dt.timedelta(days=1))
    await certificate(api, globex, "globex 1", MONDAY + 2 * WEEK)
    await certificate(api, globex, "globex 2", MONDAY + 2 * WEEK + dt.timedelta(hours=1))

    assert _counts(await _forecast(api, weeks=3)) == [1, 0, 2]
    assert _counts(await _forecast(api, weeks=3, org=acme)) == [1, 0, 0]
    assert _counts(await _forecast(api, weeks=3, org=globex)) == [0, 0, 2]
    # An ID that is no organization counts nothing (as the devices filter does).
    assert _counts(await _forecast(api, weeks=3, org="nonsense")) == [0, 0, 0]


async def test_a_restricted_user_counts_only_what_they_may_see(api: GraphQLClient) -> None:
    customer = await helpers.organization(api, "Customer Co", "CUSTOMER")
    vendor = await helpers.organization(api, "Vendor Co", "VENDOR")
    await certificate(api, customer, "seen", MONDAY + WEEK)
    await certificate(api, vendor, "hidden 1", MONDAY + WEEK)
    await certificate(api, vendor, "hidden 2", NOW)
    carol = api.as_user(await restricted_token(api, ["CUSTOMER"]))

    assert _counts(await _forecast(api, weeks=2)) == [1, 2]
    assert _counts(await _forecast(carol, weeks=2)) == [0, 1]
    assert _counts(await _forecast(carol, weeks=2, org=vendor)) == [0, 0]


@pytest.mark.parametrize("weeks", [0, -1, 105])
async def test_weeks_out_of_range_is_a_clear_error(api: GraphQLClient, weeks: int) -> None:
    body = await api.execute(FORECAST, weeks=weeks)
    assert body["data"] is None
    assert body["errors"][0]["message"] == "weeks must be between 1 and 104."
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_weeks_null_is_the_default_26(api: GraphQLClient) -> None:
    assert len(await _forecast(api, weeks=None)) == 26
    assert len(await _forecast(api, weeks=104)) == 104


async def test_the_forecast_is_one_grouped_query(api: GraphQLClient, services: Services) -> None:
    org = await helpers.organization(api)
    for i in range(12):
        await certificate(api, org, f"device {i}", MONDAY + (i % 4) * WEEK + dt.timedelta(hours=i))

    with counting(services) as statements:
        weeks = await _forecast(api, weeks=26)

    assert _counts(weeks)[:5] == [3, 3, 3, 3, 0]
    assert len(statements) == 2, statements  # the token, then the forecast
    assert "GROUP BY" in statements[1]
