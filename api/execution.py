"""A graphql-core execution context with a short path for plain leaf fields.

A page of 100 devices has about 3,000 fields that are plain attributes with a scalar or enum
type (``name``, ``validUntil``, ...). graphql-core executes each one in full: a path entry, the
field definition looked up, a resolve-info object, the arguments coerced, the resolver, then
value completion; that was most of a large page's time. Such a field needs none of it: it is a
Strawberry "basic field" (no resolver, no permission classes, no field extensions), whose
resolver reads the attribute without any resolve info, and its value is serialized.

So for a field without arguments or directives, such a resolver, a leaf type and no
middleware, the attribute is read once and serialized here. Anything unusual - an exception,
a null for a non-null type, a value that does not serialize or is awaitable - is completed by
graphql-core's own ``complete_value`` with the value already read, and its errors located and
handled as ``execute_field`` does, so errors, their paths and null propagation are exactly
graphql-core's.
"""

from __future__ import annotations

from asyncio import gather
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    located_error,
)
from graphql.execution.execute import get_field_def
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

# Values that are neither exceptions nor awaitable, so need no check.
_PLAIN = frozenset({str, int, float, bool, datetime})


# Where a field is: its parent type, the parent's path and its response name (the field's
# Path is only made when graphql-core needs it).
_Where = tuple[GraphQLObjectType, Path | None, str]


class _LeafPlan(NamedTuple):
    field_def: GraphQLField
    resolve: Callable[[Any], Any]  # Strawberry's basic-field resolver: reads the attribute
    serialize: Callable[[Any], Any]
    non_null: bool


class LeafFastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._leaf_plans: dict[tuple[GraphQLObjectType, str], _LeafPlan | None] = {}

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
            plan = None
            if not node.arguments and not node.directives:
                key = (parent_type, node.name.value)
                plan = plans[key] if key in plans else plans.setdefault(key, self._plan(key, node))
            if plan is not None:
                where = (parent_type, path, response_name)
                result = self._leaf(plan, where, source_value, field_nodes)
                if type(result) in _PLAIN or result is None:  # serialized: no await to check
                    results[response_name] = result
                    continue
            else:
                field_path = Path(path, response_name, parent_type.name)
                result = self.execute_field(parent_type, source_value, field_nodes, field_path)
                if result is Undefined:
                    continue
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

    def _plan(self, key: tuple[GraphQLObjectType, str], node: FieldNode) -> _LeafPlan | None:
        field_def = get_field_def(self.schema, key[0], node)
        if field_def is None or field_def.args or field_def.resolve is None:
            return None
        strawberry_field = field_def.extensions.get("strawberry-definition")
        if not isinstance(strawberry_field, StrawberryField) or not strawberry_field.is_basic_field:
            return None  # a resolver, permission classes or field extensions: the full path
        if not getattr(field_def.resolve, "_is_default", False):
            return None  # e.g. an exception handler wraps it
        field_type = field_def.type
        non_null = isinstance(field_type, GraphQLNonNull)
        leaf = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        if not isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
            return None
        return _LeafPlan(field_def, field_def.resolve, leaf.serialize, non_null)

    def _leaf(
        self, plan: _LeafPlan, where: _Where, source: Any, field_nodes: list[FieldNode]
    ) -> Any:
        """The field's serialized value, read once; graphql-core completes the unusual ones."""
        try:
            value = plan.resolve(source)
        except Exception as exc:
            return self._complete(plan, where, field_nodes, exc, raised=True)
        if value is None:
            if not plan.non_null:
                return None
        elif type(value) in _PLAIN or not (
            isinstance(value, Exception) or self.is_awaitable(value)
        ):
            try:
                serialized = plan.serialize(value)
            except Exception:
                serialized = None  # complete_value serializes again and reports the error
            if serialized is not None and serialized is not Undefined:
                return serialized
        return self._complete(plan, where, field_nodes, value, raised=False)

    def _complete(
        self,
        plan: _LeafPlan,
        where: _Where,
        field_nodes: list[FieldNode],
        outcome: Any,
        *,
        raised: bool,
    ) -> Any:
        """What ``execute_field`` does after the resolver returned (or raised) ``outcome``."""
        parent_type, path, response_name = where
        field_path = Path(path, response_name, parent_type.name)
        field_def, return_type = plan.field_def, plan.field_def.type
        info = self.build_resolve_info(field_def, field_nodes, parent_type, field_path)
        try:
            if raised:
                raise outcome
            if self.is_awaitable(outcome):

                async def await_result() -> Any:
                    try:
                        completed = self.complete_value(
                            return_type, field_nodes, info, field_path, await outcome
                        )
                        return await completed if self.is_awaitable(completed) else completed
                    except Exception as raw_error:
                        error = located_error(raw_error, field_nodes, field_path.as_list())
                        self.handle_field_error(error, return_type, field_path)
                        return None

                return await_result()
            return self.complete_value(return_type, field_nodes, info, field_path, outcome)
        except Exception as raw_error:
            error = located_error(raw_error, field_nodes, field_path.as_list())
            self.handle_field_error(error, return_type, field_path)
            return None
