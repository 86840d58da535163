"""One way to answer a mutation: run the use case, and turn what a user can fix into
``errors`` (Shopify's ``userErrors``) instead of a GraphQL error."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry

from api.types import UserError
from tracking.core.errors import DstrackError
from tracking.core.ids import decode_pk

P = TypeVar("P")
R = TypeVar("R")


async def payload(
    make: Callable[..., P],
    field: str,
    call: Callable[[], R | Awaitable[R]],
    wrap: Callable[[R], Any],
) -> P:
    """``make(field=wrap(result), errors=[])``, or ``make(field=None, errors=[...])`` when the
    use case refused with a ``DstrackError``."""
    try:
        result = call()
        if inspect.isawaitable(result):
            result = await result
    except DstrackError as error:
        return make(**{field: None, "errors": user_errors(error)})
    return make(**{field: wrap(result), "errors": []})


def user_errors(error: DstrackError | None) -> list[UserError]:
    return [UserError.from_error(error)] if error is not None else []


def pk(global_id: strawberry.ID | None, type_name: str) -> int | None:
    """The primary key of an input ID; an unknown or foreign ID becomes 0, found by nothing."""
    if global_id is None:
        return None
    return decode_pk(global_id, type_name) or 0
