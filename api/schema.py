"""The GraphQL schema with its protective limits."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.schema.types.base_scalars import DateTimeDefinition

from api.mutations import Mutation
from api.queries import Query
from api.types import Contract, Device, Organization, Product, User

log = logging.getLogger("dstrack.api")

MAX_DEPTH = 12
MAX_TOKENS = 4000
MAX_ALIASES = 50


def _is_internal(error: GraphQLError) -> bool:
    """Errors raised by our own code on purpose are GraphQLErrors; anything else is a bug."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class MaskInternalErrors(MaskErrors):
    """Unexpected exceptions become "Internal error (reference …)", logged with that reference."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_internal)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        reference = secrets.token_hex(6)
        log.error("internal error %s at %s", reference, error.path, exc_info=error.original_error)
        return GraphQLError(
            message=f"Internal error (reference {reference}).",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_ERROR", "reference": reference},
        )


def _parse_datetime(value: object) -> datetime:
    """ISO-8601; a value without an offset is taken as UTC (the database keeps UTC only)."""
    parsed = DateTimeDefinition.parse_value(value)  # type: ignore[misc]
    assert isinstance(parsed, datetime)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


UtcDateTime = strawberry.scalar(
    name="DateTime",
    description="ISO-8601 date and time, shown in UTC with its offset; "
    "an input without an offset is taken as UTC.",
    serialize=lambda value: value.astimezone(UTC).isoformat(),
    parse_value=_parse_datetime,
)

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    types=[Device, Organization, Contract, Product, User],
    scalar_overrides={datetime: UtcDateTime},
    extensions=[
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        MaskInternalErrors,
    ],
)
