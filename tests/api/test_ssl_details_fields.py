"""SSL Details are declared once (``tracking.core.ssl_details.SslDetails``): the stored record
has a column for each field and the GraphQL type a field for each, under the same name."""

from __future__ import annotations

import re

from api.schema import schema
from models import SslDetailsRecord
from tracking.core.ssl_details import FIELD_NAMES, LABELS


def camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m[1].upper(), name)


def test_the_record_has_a_column_per_field() -> None:
    columns = {column.name for column in SslDetailsRecord.__table__.columns}  # type: ignore[attr-defined]
    assert set(FIELD_NAMES) <= columns


def test_the_graphql_type_has_a_field_per_field() -> None:
    graphql = schema._schema.type_map["SslDetails"]
    assert {camel(name) for name in FIELD_NAMES} <= set(graphql.fields)  # type: ignore[attr-defined]


def test_every_field_has_a_label_in_the_references_order() -> None:
    assert list(LABELS) == list(FIELD_NAMES)
    assert LABELS["fingerprint_sha256"] == "SHA-256 Fingerprint"
    assert all(label and label[0].isupper() for label in LABELS.values())
