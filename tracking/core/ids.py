"""Global object IDs, the same in GraphQL and in Dagster run config: base64("Type:pk")."""

from __future__ import annotations

import base64
import binascii


def encode_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def decode_id(global_id: str) -> tuple[str, int] | None:
    """``(type name, primary key)``, or None when the text is not one of our IDs."""
    if len(global_id) > 200:
        return None
    try:
        text = base64.b64decode(global_id.encode("ascii"), validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, sep, pk = text.partition(":")
    if not sep or not pk.isascii() or not pk.isdigit() or len(pk) > 18:
        return None
    return type_name, int(pk)


def decode_pk(global_id: str, type_name: str) -> int | None:
    decoded = decode_id(global_id)
    if decoded is None or decoded[0] != type_name:
        return None
    return decoded[1]
