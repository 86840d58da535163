"""The alerts surface (the product contract's section 7) is a floor: every name there exists."""

from __future__ import annotations

from tests.api.contract_check import contract_schema, differences


def test_every_alerts_type_field_and_argument_exists() -> None:
    contract = contract_schema("contract_alerts.graphql")
    assert "NotificationChannel" in contract.type_map  # the section is read
    assert differences(contract) == []
