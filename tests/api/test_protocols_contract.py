"""The "Beyond HTTPS" surface (protocols, every address, key and TLS facts) is a floor: every
name there exists, with its type and default."""

from __future__ import annotations

from graphql import GraphQLInputObjectType, GraphQLObjectType

from tests.api.contract_check import contract_schema, differences


def test_every_protocols_type_field_and_default_exists() -> None:
    contract = contract_schema("contract_protocols.graphql")
    create, device = contract.type_map["CreateDeviceInput"], contract.type_map["Device"]
    assert isinstance(create, GraphQLInputObjectType) and isinstance(device, GraphQLObjectType)
    assert "checkAllAddresses" in create.fields and "endpoints" in device.fields  # read
    assert differences(contract) == []
