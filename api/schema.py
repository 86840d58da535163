"""The GraphQL schema with its protective limits."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLSchema,
    StringValueNode,
    ValueNode,
    parse,
    print_ast,
)
from graphql.error import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.extensions.max_aliases import create_validator as alias_limit
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit
from strawberry.schema.schema import validate_document
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types import ExecutionContext, ExecutionResult

from api.execution import LeafFastExecutionContext
from api.limits import MAX_ALIASES, QueryLimits
from api.mutations import Mutation
from api.queries import Query
from api.redaction import describe, describe_all, guard_loggers
from api.types import Contract, Device, Organization, Product, User

log = logging.getLogger("dstrack.api")
# Strawberry's logger is not used any more (see DstrackSchema), but stays guarded.
guard_loggers("dstrack.api", "strawberry.execution")

MAX_DEPTH = 12
MAX_TOKENS = 4000

# The depth and alias limits (QueryDepthLimiter, MaxAliasesLimiter) as validation rules made
# once: the extensions would make new rule classes per request, which no cache could match.
LIMITS = (depth_limit(MAX_DEPTH, should_ignore=None), alias_limit(MAX_ALIASES))

LOGGED_ERRORS = 5  # per request; a document may have a hundred

CACHED_DOCUMENTS = 128
MAX_CACHED_QUERY = 20_000  # characters: a body may be 1 MiB, the cache holds at most 128 such


@lru_cache(maxsize=CACHED_DOCUMENTS)
def _parse(query: str, **options: Any) -> DocumentNode:
    return parse(query, **options)


@lru_cache(maxsize=CACHED_DOCUMENTS)
def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> tuple[GraphQLError, ...]:
    return tuple(validate_document(schema, document, rules))


class DocumentCache(SchemaExtension):
    """Each distinct query text is parsed and validated once, not on every request.

    Parsing and validating a page's query costs more than executing a small one. The cache is
    keyed by the text and the parse options (the token limit), then by the parsed document and
    the validation rules (the limits included), so a cached document passed the same checks as
    a fresh one; queries failing to parse are not cached. Bounded in count and text length.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if query is not None and len(query) <= MAX_CACHED_QUERY:
            context.graphql_document = _parse(query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        query = context.query
        if (
            document is not None
            and query is not None
            and len(query) <= MAX_CACHED_QUERY
            and context.validation_rules
            and context.pre_execution_errors is None
        ):
            errors = _validate(context.schema._schema, document, context.validation_rules)
            context.pre_execution_errors = list(errors)
        yield


def _is_internal(error: GraphQLError) -> bool:
    """Errors raised by our own code on purpose are GraphQLErrors; anything else is a bug."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def _masked(error: GraphQLError) -> GraphQLError:
    """The error a client sees for an internal one; logged here with the same reference."""
    reference = secrets.token_hex(6)
    log.error("internal error %s: %s", reference, describe(error), exc_info=error.original_error)
    return GraphQLError(
        message=f"Internal error (reference {reference}).",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL_ERROR", "reference": reference},
    )


class MaskInternalErrors(MaskErrors):
    """Unexpected exceptions become "Internal error (reference …)", logged with that reference."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_internal)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return _masked(error)


class DstrackSchema(strawberry.Schema):
    """Strawberry's schema with its error logging made safe.

    Strawberry logs every error with the query around it - certificates, private keys and
    tokens included - at ERROR. Here a client's mistake is logged at WARNING, with secrets
    masked (``api.redaction``); an internal error is logged once, with the reference its
    masked message carries. An exception raised outside execution (by an extension, or
    during validation) skips the masking extension: it is masked here.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        mistakes = [e for e in errors if not _is_internal(e)]  # internal: logged when masked
        for line in describe_all(mistakes, execution_context, LOGGED_ERRORS):
            log.warning("GraphQL error: %s", line)

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        result = await super().execute(*args, **kwargs)
        if result.errors:
            result.errors = [_masked(e) if _is_internal(e) else e for e in result.errors]
        return result


def _parse_datetime(value: object) -> datetime:
    """ISO-8601; a value without an offset is taken as UTC (the database keeps UTC only).

    Used for literals in the query text as well as for variables: a date whose offset takes it
    out of the years 1-9999 in UTC (``0001-01-01T00:00:00+14:00``) is a GraphQL error.
    """
    parsed = DateTimeDefinition.parse_value(value)  # type: ignore[misc]
    assert isinstance(parsed, datetime)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise GraphQLError(
            f'Value cannot represent a DateTime: "{value}". It is out of range in UTC.'
        ) from None


def _parse_datetime_literal(node: ValueNode, variables: Any = None) -> datetime:
    """A DateTime typed in the query text: the same rules as a variable, errors located."""
    if not isinstance(node, StringValueNode):
        raise GraphQLError(f"DateTime cannot represent a non-string value: {print_ast(node)}", node)
    try:
        return _parse_datetime(node.value)
    except GraphQLError as error:
        raise GraphQLError(error.message, node) from None


def _serialize_datetime(value: datetime) -> str:
    """ISO-8601 in UTC (what the database gives is UTC already: no conversion then)."""
    return (value if value.tzinfo is UTC else value.astimezone(UTC)).isoformat()


UtcDateTime = strawberry.scalar(
    name="DateTime",
    description="ISO-8601 date and time, shown in UTC with its offset; "
    "an input without an offset is taken as UTC.",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
    parse_literal=_parse_datetime_literal,
)

schema = DstrackSchema(
    query=Query,
    mutation=Mutation,
    types=[Device, Organization, Contract, Product, User],
    scalar_overrides={datetime: UtcDateTime},
    execution_context_class=LeafFastExecutionContext,
    extensions=[
        lambda: AddValidationRules(list(LIMITS)),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        QueryLimits,  # before the cache, which parses and validates in its own hooks
        DocumentCache,  # after the limits, which set the parse options and validation rules
        MaskInternalErrors,
    ],
)
