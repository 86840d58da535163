"""A graphql-core execution context with a short path for plain leaf fields.

A page of 100 devices has about 3,000 fields that are plain attributes with a scalar or enum
type (``name``, ``validUntil``, ...). graphql-core executes each one in full: a path entry, the
field definition looked up, a resolve-info object, the arguments coerced, the resolver, then
value completion; that was most of a large page's time. Such a field needs none of it: its
Strawberry resolver reads an attribute (it is marked ``_is_default``; permission classes,
field extensions and custom resolvers never are) and its value is serialized.

So for a field without arguments or directives, with such a resolver, a leaf type and no
middleware, the attribute is read and serialized here. Anything unusual - a null for a
non-null type, an exception, a value that does not serialize - goes the whole way through
graphql-core's ``execute_field`` instead, so errors, their paths and null propagation are
exactly graphql-core's (the resolver reads an attribute, so reading it twice changes nothing).
"""

from __future__ import annotations

from asyncio import gather
from collections.abc import Callable
from datetime import datetime
from typing import Any

from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)
from graphql.execution.execute import get_field_def
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# (read the attribute, serialize the value, is the type non-null), or None: the full path.
_LeafPlan = tuple[Callable[[Any], Any], Callable[[Any], Any], bool] | None

# Values that are neither exceptions nor awaitable, so need no check.
_PLAIN = frozenset({str, int, float, bool, datetime})


class LeafFastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._leaf_plans: dict[tuple[GraphQLObjectType, str], _LeafPlan] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        fields: dict[str, list[FieldNode]],
    ) -> AwaitableOrValue[dict[str, Any]]:
        manager = self.middleware_manager  # Strawberry always makes one, often empty
        if manager is not None and manager.middlewares:
            return super().execute_fields(parent_type, source_value, path, fields)
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        plans = self._leaf_plans
        for response_name, field_nodes in fields.items():
            node = field_nodes[0]
            if not node.arguments and not node.directives:
                key = (parent_type, node.name.value)
                plan = plans[key] if key in plans else plans.setdefault(key, self._plan(key, node))
                if plan is not None and self._plain_leaf(
                    plan, source_value, results, response_name
                ):
                    continue
            field_path = Path(path, response_name, parent_type.name)
            result = self.execute_field(parent_type, source_value, field_nodes, field_path)
            if result is not Undefined:
                results[response_name] = result
                if self.is_awaitable(result):
                    awaitable_fields.append(response_name)
        if not awaitable_fields:
            return results
        return self._gathered(results, awaitable_fields)

    async def _gathered(self, results: dict[str, Any], awaitable: list[str]) -> dict[str, Any]:
        """graphql-core's way: the awaitable fields' results awaited together."""
        values = await gather(*(results[name] for name in awaitable))
        results.update(zip(awaitable, values, strict=True))
        return results

    def _plan(self, key: tuple[GraphQLObjectType, str], node: FieldNode) -> _LeafPlan:
        field_def = get_field_def(self.schema, key[0], node)
        if field_def is None or field_def.args or field_def.resolve is None:
            return None
        if not getattr(field_def.resolve, "_is_default", False):
            return None
        field_type = field_def.type
        non_null = isinstance(field_type, GraphQLNonNull)
        leaf = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        if not isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
            return None
        return field_def.resolve, leaf.serialize, non_null

    def _plain_leaf(
        self,
        plan: tuple[Callable[[Any], Any], Callable[[Any], Any], bool],
        source: Any,
        results: dict[str, Any],
        response_name: str,
    ) -> bool:
        """Store the field's serialized value and say True, or say False for the full path."""
        resolve, serialize, non_null = plan
        try:
            value = resolve(source)
            if value is None:
                if non_null:
                    return False
                results[response_name] = None
                return True
            # graphql-core raises a returned exception and awaits an awaitable
            if type(value) not in _PLAIN and (
                isinstance(value, Exception) or self.is_awaitable(value)
            ):
                return False
            serialized = serialize(value)
        except Exception:
            return False
        if serialized is None or serialized is Undefined:
            return False
        results[response_name] = serialized
        return True
