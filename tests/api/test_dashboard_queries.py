"""Every GraphQL operation the dashboard's JavaScript sends is valid: against this server's
schema, and for the alerts panel against the alerts surface the product contract promises."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from graphql import GraphQLSchema, parse, validate

from api.dashboard import STATIC_FILES
from api.schema import schema
from tests.api.contract_check import contract_schema

HERE = Path(__file__).parent
# A string in any of JavaScript's quotes that starts like a GraphQL operation.
OPERATION = re.compile(r"([`'\"])((?:query |mutation |\{ )(?:(?!\1).)+)\1", re.DOTALL)
ALERTS_OPERATIONS = {"OpenAlerts", "Acknowledge"}


def _operations() -> dict[str, str]:
    """The operations in the shipped JavaScript files, by operation name ("" when unnamed)."""
    found: dict[str, str] = {}
    for name in sorted(STATIC_FILES):
        if not name.endswith(".js"):
            continue
        text = (resources.files("api") / "static" / name).read_text(encoding="utf-8")
        for match in OPERATION.finditer(text):
            document = match.group(2)
            named = re.match(r"(?:query|mutation) (\w+)", document)
            found[named.group(1) if named else ""] = document
    return found


OPERATIONS = _operations()


def _errors(target: GraphQLSchema, document: str) -> list[str]:
    return [error.message for error in validate(target, parse(document))]


def _contract_with_alerts() -> GraphQLSchema:
    return contract_schema("contract_alerts.graphql")


def test_the_dashboard_sends_the_operations_it_needs() -> None:
    assert set(OPERATIONS) == {
        "Me",
        "Organizations",
        "Expiring",
        "Forecast",
        "OpenAlerts",
        "Acknowledge",
    }


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operations_are_valid_on_this_server(name: str) -> None:
    assert _errors(schema._schema, OPERATIONS[name]) == []


@pytest.mark.parametrize("name", sorted(ALERTS_OPERATIONS))
def test_alerts_operations_are_valid_on_the_contract_schema(name: str) -> None:
    """The alerts panel asks only for what clients are promised."""
    assert _errors(_contract_with_alerts(), OPERATIONS[name]) == []
