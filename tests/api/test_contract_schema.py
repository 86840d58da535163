"""The GraphQL surface clients rely on (contract.graphql) is a floor: every name there exists."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    build_schema,
)

from api.schema import schema

CONTRACT_SDL = Path(__file__).with_name("contract.graphql")


def test_every_contract_type_field_and_argument_exists() -> None:
    contract = build_schema(CONTRACT_SDL.read_text())
    ours = schema._schema
    missing = []
    for name, ctype in contract.type_map.items():
        if name.startswith("__"):
            continue
        otype = ours.type_map.get(name)
        if otype is None:
            missing.append(name)
            continue
        if isinstance(ctype, GraphQLEnumType):
            assert isinstance(otype, GraphQLEnumType)
            missing += [f"{name}.{v}" for v in ctype.values if v not in otype.values]
        if isinstance(ctype, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            assert isinstance(otype, type(ctype)), name
            for field_name, field in ctype.fields.items():
                ofield = otype.fields.get(field_name)  # type: ignore[union-attr]
                if ofield is None:
                    missing.append(f"{name}.{field_name}")
                    continue
                assert str(ofield.type) == str(field.type), f"{name}.{field_name}"
                for arg_name, arg in getattr(field, "args", {}).items():
                    oarg = ofield.args.get(arg_name)
                    assert oarg is not None, f"{name}.{field_name}({arg_name})"
                    assert str(oarg.type) == str(arg.type), f"{name}.{field_name}({arg_name})"
        if isinstance(ctype, GraphQLObjectType):
            assert {i.name for i in ctype.interfaces} <= {i.name for i in otype.interfaces}  # type: ignore[union-attr]
    assert missing == []
