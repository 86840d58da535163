"""Cheap bounds on a query document, checked before any validation rule can expand it.

Strawberry's depth and alias rules walk every fragment spread again each time it is spread
(``F1 { ...F0 ...F0 }``, ``F2 { ...F1 ...F1 }``… doubles the work at each level), and
graphql-core's OverlappingFieldsCanBeMergedRule compares every pair of fields that answer under
the same name (``{ me { name name name … } }`` is quadratic). Within the 4,000-token limit either
one holds the event loop for seconds. So before validation, one linear pass measures the
document with every fragment expanded - each fragment measured once (memoized) - and refuses it
when it is too big, too deeply nested, cyclic or asks for too much introspection. The query text
itself is bounded before parsing: graphql-core reads string literals and comments one character
at a time, so 1 MiB of them takes a quarter of a second.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    TokenKind,
)
from strawberry.extensions import SchemaExtension

MAX_QUERY_CHARS = 100_000  # larger values (PEM certificates, CSV) belong in variables
MAX_DEFINITIONS = 100  # operations and fragments in one document
MAX_VARIABLES = 100  # variable definitions in one document
MAX_DIGITS = 100  # characters of a number literal
MAX_SELECTIONS = 2_000  # fields, spreads and inline fragments, every fragment expanded
MAX_ALIASES = 50  # aliased fields in the operations, every fragment expanded
MAX_NESTING = 40  # selection sets within selection sets, through fragments too
MAX_SAME_NAME_PAIRS = 1_000  # pairs of fields answering under the same response path
MAX_SCHEMA_FIELDS = 1  # `__schema` (a full introspection costs as much as a page of devices)
MAX_TYPE_FIELDS = 10  # `__type`

TOO_LARGE = "QUERY_TOO_LARGE"
TOO_COMPLEX = "QUERY_TOO_COMPLEX"


@dataclass
class _Measure:
    """One definition's size, first on its own, then with its fragments expanded."""

    selections: int = 0
    nesting: int = 0
    aliases: int = 0
    schema_fields: int = 0
    type_fields: int = 0
    spreads: list[tuple[FragmentSpreadNode, int]] = field(default_factory=list)

    def add(self, fragment: _Measure, level: int) -> None:
        self.selections = min(self.selections + fragment.selections, MAX_SELECTIONS + 1)
        self.nesting = max(self.nesting, level + fragment.nesting)
        self.aliases = min(self.aliases + fragment.aliases, MAX_SELECTIONS)
        self.schema_fields = min(self.schema_fields + fragment.schema_fields, MAX_SELECTIONS)
        self.type_fields = min(self.type_fields + fragment.type_fields, MAX_SELECTIONS)


def _measure_own(selection_set: SelectionSetNode) -> _Measure:
    """A selection set without expanding its spreads (which are listed with their level)."""
    measure = _Measure()
    stack = [(selection_set, 1)]
    while stack:
        current, level = stack.pop()
        measure.nesting = max(measure.nesting, level)
        for selection in current.selections:
            measure.selections += 1
            if isinstance(selection, FragmentSpreadNode):
                measure.spreads.append((selection, level))
                continue
            if isinstance(selection, FieldNode):
                name = selection.name.value
                measure.aliases += selection.alias is not None
                measure.schema_fields += name == "__schema"
                measure.type_fields += name == "__type"
            nested = selection.selection_set  # type: ignore[attr-defined]
            if nested is not None:
                stack.append((nested, level + 1))
    return measure


class _Refused(Exception):
    def __init__(self, message: str, node: Node | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.node, self.code = message, node, code


def _expand_fragments(fragments: dict[str, FragmentDefinitionNode]) -> dict[str, _Measure]:
    """Every fragment measured with its spreads expanded, each fragment once (no recursion)."""
    own = {name: _measure_own(fragment.selection_set) for name, fragment in fragments.items()}
    done: dict[str, _Measure] = {}
    for root in own:
        path: list[tuple[str, Iterator[tuple[FragmentSpreadNode, int]]]] = [
            (root, iter(own[root].spreads))
        ]
        on_path = {root}
        while path:
            name, spreads = path[-1]
            for spread, _level in spreads:
                target = spread.name.value
                if target not in own:
                    raise _Refused(f"Unknown fragment '{target}'.", spread)
                if target in on_path:
                    raise _Refused(f"Cannot spread fragment '{target}' within itself.", spread)
                if target not in done:
                    path.append((target, iter(own[target].spreads)))
                    on_path.add(target)
                    break
            else:
                path.pop()
                on_path.discard(name)
                if name not in done:
                    done[name] = _with_fragments(own[name], done)
    return done


def _with_fragments(own: _Measure, expanded: dict[str, _Measure]) -> _Measure:
    total = _Measure(own.selections, own.nesting, own.aliases, own.schema_fields, own.type_fields)
    for spread, level in own.spreads:
        total.add(expanded[spread.name.value], level)
    return total


_Measures = list[tuple[ExecutableDefinitionNode, _Measure]]


def _measure(document: DocumentNode) -> tuple[dict[str, FragmentDefinitionNode], _Measures]:
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
    expanded = _expand_fragments(fragments)
    measures: _Measures = []
    for definition in document.definitions:
        if not isinstance(definition, ExecutableDefinitionNode):
            continue  # type definitions are refused by validation, and expand nothing
        name = definition.name.value if definition.name else None
        if isinstance(definition, FragmentDefinitionNode) and fragments[name or ""] is definition:
            measures.append((definition, expanded[definition.name.value]))
            continue
        own = _measure_own(definition.selection_set)  # an operation, or a duplicate fragment
        for spread, _level in own.spreads:
            if spread.name.value not in expanded:
                raise _Refused(f"Unknown fragment '{spread.name.value}'.", spread)
        measures.append((definition, _with_fragments(own, expanded)))
    return fragments, measures


def _same_name_pairs(
    definition: ExecutableDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> int:
    """Pairs of fields with the same response path: what OverlappingFieldsCanBeMerged compares.

    Only called once the expanded size is known to be bounded (and the fragments acyclic).
    """
    counts: dict[tuple[Any, str], int] = {}
    pairs = 0
    stack: list[tuple[SelectionSetNode, Any]] = [(definition.selection_set, None)]
    while stack:
        selection_set, path = stack.pop()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                key = (path, (selection.alias or selection.name).value)
                pairs += counts.get(key, 0)
                counts[key] = counts.get(key, 0) + 1
                if selection.selection_set is not None:
                    stack.append((selection.selection_set, key))
            elif isinstance(selection, FragmentSpreadNode):
                stack.append((fragments[selection.name.value].selection_set, path))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, path))
    return pairs


def _check_text(document: DocumentNode) -> None:
    """Definitions, variables and number literals: validation costs grow with each."""
    definitions = [d for d in document.definitions if isinstance(d, ExecutableDefinitionNode)]
    if len(definitions) > MAX_DEFINITIONS:
        raise _Refused(
            f"The query has {len(definitions)} operations and fragments; "
            f"at most {MAX_DEFINITIONS} are allowed.",
            code=TOO_COMPLEX,
        )
    variables = sum(len(d.variable_definitions or ()) for d in definitions)
    if variables > MAX_VARIABLES:
        raise _Refused(
            f"The query defines {variables} variables; at most {MAX_VARIABLES} are allowed.",
            code=TOO_COMPLEX,
        )
    token = document.loc.start_token if document.loc else None
    while token is not None:
        # graphql-core reads an Int literal with int(), which refuses over 4,300 digits.
        if token.kind in (TokenKind.INT, TokenKind.FLOAT) and len(token.value or "") > MAX_DIGITS:
            raise _Refused(
                f"A number in the query has more than {MAX_DIGITS} characters.",
                code=TOO_COMPLEX,
            )
        token = token.next


def _check_expansion(document: DocumentNode) -> None:
    fragments, measures = _measure(document)
    if sum(measure.selections for _, measure in measures) > MAX_SELECTIONS:
        raise _Refused(
            f"The query has more than {MAX_SELECTIONS} fields once its fragments are expanded.",
            code=TOO_COMPLEX,
        )
    for definition, measure in measures:
        if measure.nesting > MAX_NESTING:
            raise _Refused(
                f"The query nests selections more than {MAX_NESTING} levels deep.",
                definition,
                TOO_COMPLEX,
            )
    operations = [m for d, m in measures if isinstance(d, OperationDefinitionNode)]
    if (aliases := sum(m.aliases for m in operations)) > MAX_ALIASES:
        raise _Refused(
            f"The query has {aliases} aliases; at most {MAX_ALIASES} are allowed.",
            code=TOO_COMPLEX,
        )
    if sum(m.schema_fields for m in operations) > MAX_SCHEMA_FIELDS or (
        sum(m.type_fields for m in operations) > MAX_TYPE_FIELDS
    ):
        raise _Refused(
            f"A query may ask for __schema at most {MAX_SCHEMA_FIELDS} time(s) and for __type "
            f"at most {MAX_TYPE_FIELDS} times.",
            code=TOO_COMPLEX,
        )
    pairs = sum(_same_name_pairs(definition, fragments) for definition, _ in measures)
    if pairs > MAX_SAME_NAME_PAIRS:
        raise _Refused(
            "The query repeats fields under the same name too often "
            f"(more than {MAX_SAME_NAME_PAIRS} pairs to compare).",
            code=TOO_COMPLEX,
        )


def _check(document: DocumentNode) -> _Refused | None:
    try:
        _check_text(document)
        _check_expansion(document)
    except _Refused as refused:
        return refused
    return None


# The verdicts on the last query texts (a page's query is checked once, not on every request:
# about 0.2 ms). Keyed by the text, not the document, whose hash costs as much as the check.
_VERDICTS: OrderedDict[str, _Refused | None] = OrderedDict()
CACHED_VERDICTS = 128
MAX_CACHED_TEXT = 20_000


def document_problem(document: DocumentNode, query: str | None = None) -> GraphQLError | None:
    """Why the document (parsed from ``query``, if given) must not reach validation, or None."""
    if query is None or len(query) > MAX_CACHED_TEXT:
        refused = _check(document)
    elif query in _VERDICTS:
        _VERDICTS.move_to_end(query)
        refused = _VERDICTS[query]
    else:
        refused = _VERDICTS[query] = _check(document)
        if len(_VERDICTS) > CACHED_VERDICTS:
            _VERDICTS.popitem(last=False)
    if refused is None:
        return None
    return GraphQLError(  # a new error each time: the request's own
        refused.message,
        nodes=[refused.node] if refused.node else None,
        extensions={"code": refused.code} if refused.code else None,
    )


def text_problem(query: str) -> GraphQLError | None:
    if len(query) <= MAX_QUERY_CHARS:
        return None
    return GraphQLError(
        f"The query text is longer than {MAX_QUERY_CHARS} characters; "
        "send large values (certificates, lists) as variables.",
        extensions={"code": TOO_LARGE},
    )


class QueryLimits(SchemaExtension):
    """Refuses too long query texts before parsing and too costly documents before validation.

    Must come before ``DocumentCache``, which parses and validates in its own hooks.
    """

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None and (error := text_problem(query)):
            raise error
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            error = document_problem(document, context.query)
            if error is not None:
                context.pre_execution_errors = [error]
        yield
