"""A DateTime typed in the query text gets the same clear errors as one sent as a variable."""

from __future__ import annotations

import json

import pytest

from tests.conftest import GraphQLClient

LITERAL = "{{ devices(filter: {{expiringBefore: {value}}}) {{ totalCount }} }}"
VARIABLE = "query($d: DateTime) { devices(filter: {expiringBefore: $d}) { totalCount } }"


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31T23:00:00-05:00",  # after year 9999 in UTC
    ],
)
async def test_a_date_out_of_range_in_utc_is_a_validation_error(
    api: GraphQLClient, value: str
) -> None:
    literal = await api.execute(LITERAL.format(value=json.dumps(value)))
    variable = await api.execute(VARIABLE, d=value)
    for body in (literal, variable):
        assert body["data"] is None
        [error] = body["errors"]
        assert "extensions" not in error, error  # no INTERNAL_ERROR, no reference
        assert "out of range" in error["message"] and value in error["message"]
    # Located in the text, as graphql-core locates other literal errors.
    assert literal["errors"][0]["locations"] == [{"line": 1, "column": 36}]


@pytest.mark.parametrize("literal", ["5", "true", "[1]", "{a: 1}", '"garbage"', '"2024-13-01"'])
async def test_other_bad_literals_are_validation_errors_too(
    api: GraphQLClient, literal: str
) -> None:
    body = await api.execute(LITERAL.format(value=literal))
    assert body["data"] is None
    [error] = body["errors"]
    assert "extensions" not in error and "DateTime" in error["message"], error


async def test_dates_in_range_with_any_offset_are_taken(api: GraphQLClient) -> None:
    for value in ("0001-01-01T14:00:00+14:00", "2030-01-01T00:00:00+14:00", "2030-01-01T00:00"):
        data = await api.ok(LITERAL.format(value=json.dumps(value)))
        assert data == {"devices": {"totalCount": 0}}
        assert await api.ok(VARIABLE, d=value) == {"devices": {"totalCount": 0}}
