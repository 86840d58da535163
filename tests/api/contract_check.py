"""The product contract's GraphQL surface as a floor: the contract's SDL files, and every name,
type and default there that dstrack's schema lacks or states otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    build_schema,
)

from api.schema import schema

HERE = Path(__file__).parent


def contract_schema(*sections: str) -> GraphQLSchema:
    """contract.graphql with the named section files (e.g. "contract_alerts.graphql")."""
    return build_schema("".join((HERE / f).read_text() for f in ("contract.graphql", *sections)))


def differences(contract: GraphQLSchema) -> list[str]:
    """What the contract names that dstrack's schema lacks, or types or defaults differently."""
    ours = schema._schema
    found: list[str] = []
    for name, ctype in contract.type_map.items():
        if name.startswith("__"):
            continue
        otype = ours.type_map.get(name)
        if otype is None or not isinstance(otype, type(ctype)):
            found.append(f"{name}: {'missing' if otype is None else type(otype).__name__}")
            continue
        if isinstance(ctype, GraphQLEnumType):
            found += [f"{name}.{v}" for v in ctype.values if v not in otype.values]  # type: ignore[attr-defined]
        if isinstance(ctype, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in ctype.fields.items():
                found += _field_differences(f"{name}.{field_name}", field, otype.fields)  # type: ignore[attr-defined]
        if isinstance(ctype, GraphQLObjectType):
            wanted = {i.name for i in ctype.interfaces}
            have = {i.name for i in otype.interfaces}  # type: ignore[attr-defined]
            found += [f"{name} implements {i}" for i in sorted(wanted - have)]
    return found


def _field_differences(where: str, field: Any, ours: dict[str, Any]) -> list[str]:
    name = where.rsplit(".", 1)[1]
    ofield = ours.get(name)
    if ofield is None:
        return [where]
    found = [] if str(ofield.type) == str(field.type) else [f"{where}: {ofield.type}"]
    found += _default_differences(where, field, ofield)  # an input object's field
    for arg_name, arg in getattr(field, "args", {}).items():
        oarg = ofield.args.get(arg_name)
        if oarg is None:
            found.append(f"{where}({arg_name})")
        elif str(oarg.type) != str(arg.type):
            found.append(f"{where}({arg_name}): {oarg.type}")
        else:
            found += _default_differences(f"{where}({arg_name})", arg, oarg)
    return found


def _default_differences(where: str, contract: Any, ours: Any) -> list[str]:
    default = getattr(contract, "default_value", Undefined)
    if default is Undefined or ours.default_value == default:
        return []
    return [f"{where} = {ours.default_value!r}, not {default!r}"]
