"""LeafFastExecutionContext gives exactly what graphql-core's own execution gives."""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from graphql import ExecutionResult
from strawberry.permission import BasePermission
from strawberry.types import Info

from api.execution import LeafFastExecutionContext
from api.schema import UtcDateTime


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Never(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Item:
    name: str
    note: str | None
    count: int
    ratio: float
    flag: bool
    color: Color
    seen_at: datetime | None
    must: str  # some items break this promise: a null for a non-null field
    wrong: int  # some items hold a value that is no Int
    secret: str = strawberry.field(default="s", permission_classes=[Never])

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times

    @strawberry.field
    async def later(self) -> str:
        await asyncio.sleep(0)
        return f"later {self.name}"


@strawberry.type
class Box:
    id: strawberry.ID
    items: list[Item]
    first: Item | None
    strict: Item  # null propagates from a non-null field of this one to here


def item(
    name: str, note: str | None, color: Color, when: datetime | None, must: Any, wrong: Any
) -> Item:
    return Item(
        name=name,
        note=note,
        count=len(name) + ord(name[0]),
        ratio=0.5,
        flag=name != "b",
        color=color,
        seen_at=when,
        must=must,
        wrong=wrong,
    )


def items() -> list[Item]:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    return [
        item("a", None, Color.RED, when, "m", 1),
        item("b", "n", Color.BLUE, None, None, 2),  # "must" is null
        item("c", "o", Color.RED, when, "m", "x"),  # "wrong" is no Int
    ]


class CountedItem(Item):
    """An Item whose ``count`` is computed on every read, and whose first read fails: the fast
    path must read it once, as graphql-core does."""

    reads = 0

    @property  # type: ignore[override]
    def count(self) -> int:
        self.reads += 1
        if self.reads == 1:
            raise RuntimeError("first read fails")
        return 7

    @count.setter
    def count(self, value: int) -> None:
        pass


@strawberry.type
class Query:
    @strawberry.field
    def box(self) -> Box:
        found = items()
        return Box(id=strawberry.ID("1"), items=found, first=found[0], strict=found[1])

    @strawberry.field
    def counted(self) -> Item | None:
        return CountedItem(
            name="a",
            note=None,
            count=0,
            ratio=0.5,
            flag=True,
            color=Color.RED,
            seen_at=None,
            must="m",
            wrong=1,
        )

    @strawberry.field
    def good_box(self) -> Box | None:
        found = items()
        return Box(id=strawberry.ID("2"), items=found[:1], first=None, strict=found[0])


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    options: dict[str, Any] = {"query": Query, "scalar_overrides": {datetime: UtcDateTime}}
    return (
        strawberry.Schema(**options),
        strawberry.Schema(**options, execution_context_class=LeafFastExecutionContext),
    )


STOCK, FAST = schemas()

QUERIES = [
    "{ box { id items { name note count ratio flag color seenAt } } }",
    "{ goodBox { id first { name } strict { name must } items { name must wrong } } }",
    # null for a non-null field: the error, its path, and the null propagated to the parent
    "{ box { items { name must } } }",
    "{ box { strict { name must } first { must } } }",
    # a value that does not serialize
    "{ box { items { name wrong } } }",
    # aliases, fragments, __typename, skip/include, arguments, async and permission fields
    "{ box { x: items { n: name c: count __typename ...F } } } fragment F on Item { flag }",
    "query($s: Boolean!) { box { items { name @skip(if: $s) note @include(if: $s) } } }",
    "{ box { items { shout(times: 2) later name } } }",
    "{ goodBox { items { name secret } } }",
    # a value read once: a property failing on its first read fails, as in graphql-core
    "{ counted { name count } }",
]


def normalized(result: ExecutionResult) -> tuple[Any, Any]:
    errors = [
        (e.message, e.path, [(loc.line, loc.column) for loc in e.locations or []])
        for e in result.errors or []
    ]
    return result.data, sorted(errors, key=repr)


@pytest.mark.parametrize("query", QUERIES)
async def test_fast_execution_gives_what_graphql_core_gives(query: str) -> None:
    variables = {"s": True}
    stock = await STOCK.execute(query, variable_values=variables)
    fast = await FAST.execute(query, variable_values=variables)
    assert normalized(fast) == normalized(stock)


async def test_the_cases_above_are_not_all_happy() -> None:
    """The comparison covers errors and propagated nulls, not only plain values."""
    result = await FAST.execute("{ box { strict { name must } items { name must wrong } } }")
    assert result.data is None  # strict and box are non-null: the null reaches the root
    assert {tuple(e.path or ()) for e in result.errors or []} >= {("box", "strict", "must")}
    plain = await FAST.execute("{ box { items { name count color seenAt } } }")
    assert plain.errors is None
    assert plain.data == {
        "box": {
            "items": [
                {"name": "a", "count": 98, "color": "RED", "seenAt": "2030-01-02T03:04:05+00:00"},
                {"name": "b", "count": 99, "color": "BLUE", "seenAt": None},
                {"name": "c", "count": 100, "color": "RED", "seenAt": "2030-01-02T03:04:05+00:00"},
            ]
        }
    }


def test_the_dstrack_schema_uses_it() -> None:
    from api.schema import schema

    assert schema.execution_context_class is LeafFastExecutionContext
