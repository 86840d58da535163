"""The "Beyond HTTPS" surface (protocols, every address, key and TLS facts) is a floor: every
name there exists, with its type and default."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLInputObjectType, GraphQLObjectType, Undefined, build_schema

from api.schema import schema

HERE = Path(__file__).parent


def test_every_protocols_type_field_and_default_exists() -> None:
    sdl = (HERE / "contract.graphql").read_text() + (
        HERE / "contract_protocols.graphql"
    ).read_text()
    contract = build_schema(sdl)
    ours = schema._schema
    checked = []
    for name in ("TlsEndpoint", "SslSource", "SslDetails", "Device", "CreateDeviceInput",
                 "UpdateDeviceInput"):  # fmt: skip
        ctype, otype = contract.type_map[name], ours.type_map[name]
        assert isinstance(ctype, GraphQLObjectType | GraphQLInputObjectType)
        assert isinstance(otype, type(ctype)), name
        for field_name, field in ctype.fields.items():
            ofield = otype.fields.get(field_name)  # type: ignore[union-attr]
            assert ofield is not None, f"{name}.{field_name}"
            assert str(ofield.type) == str(field.type), f"{name}.{field_name}"
            default = getattr(field, "default_value", Undefined)
            if default is not Undefined:
                assert ofield.default_value == default, f"{name}.{field_name}"
            checked.append(f"{name}.{field_name}")
    assert "CreateDeviceInput.checkAllAddresses" in checked and "Device.endpoints" in checked
