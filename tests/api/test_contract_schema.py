"""The GraphQL surface clients rely on (contract.graphql) is a floor: every name there exists."""

from __future__ import annotations

from tests.api.contract_check import contract_schema, differences


def test_every_contract_type_field_and_argument_exists() -> None:
    assert differences(contract_schema()) == []
