"""The query limits hold for every request (also once a query text is cached), and costly
documents are refused before they can hold the event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from graphql import get_introspection_query

from api.app import MAX_BODY_BYTES, MAX_BODY_VALUES
from api.limits import MAX_QUERY_CHARS
from api.schema import MAX_ALIASES, MAX_CACHED_QUERY, MAX_DEPTH, MAX_TOKENS
from tests.api import helpers
from tests.conftest import ADMIN_TOKEN, GraphQLClient
from tests.fakes import pki
from tests.security.support import make_user

TOO_DEEP = (
    "{ devices { edges { node { " + "parent { " * MAX_DEPTH + "id" + " }" * MAX_DEPTH + " } } } }"
)
TOO_MANY_ALIASES = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(MAX_ALIASES + 1)) + " }"
TOO_MANY_TOKENS = "{ me { " + "name " * MAX_TOKENS + "} }"


async def _refused(api: GraphQLClient, query: str, word: str) -> None:
    for _ in range(3):  # the first time parses and validates; later times may be cached
        body = await api.execute(query)
        assert body["data"] is None
        assert word in body["errors"][0]["message"].lower(), body["errors"]


async def test_the_depth_limit_holds_every_time(api: GraphQLClient) -> None:
    await _refused(api, TOO_DEEP, "depth")


async def test_the_alias_limit_holds_every_time(api: GraphQLClient) -> None:
    await _refused(api, TOO_MANY_ALIASES, "aliases")


async def test_the_token_limit_holds_every_time(api: GraphQLClient) -> None:
    await _refused(api, TOO_MANY_TOKENS, "token")


async def test_limits_hold_for_query_texts_too_long_to_cache(api: GraphQLClient) -> None:
    padding = "#" + "x" * MAX_CACHED_QUERY + "\n"
    await _refused(api, padding + TOO_DEEP, "depth")
    await _refused(api, padding + TOO_MANY_ALIASES, "aliases")
    long = await api.ok(padding + "{ me { name } }")
    assert long == {"me": {"name": "admin"}}


async def test_invalid_queries_stay_invalid_and_valid_ones_use_their_variables(
    api: GraphQLClient,
) -> None:
    for _ in range(2):
        body = await api.execute("{ me { nope } }")
        assert body["data"] is None and "nope" in body["errors"][0]["message"]
    org = await helpers.organization(api)
    ca = pki.test_ca()
    one = await helpers.ssl_device(api, org, ca.leaf("one.example").pem)
    two = await helpers.ssl_device(api, org, ca.leaf("two.example").pem)
    query = "query($id: ID!) { device(id: $id) { id sslDetails { commonName } } }"
    for device, name in ((one, "one.example"), (two, "two.example"), (one, "one.example")):
        data = await api.ok(query, id=device["id"])
        assert data["device"] == {"id": device["id"], "sslDetails": {"commonName": name}}


# --- Documents that cost far more to validate than to send -------------------------------------
#
# Before the bounds of api/limits.py, each of these held the only event loop (measured on a
# loaded 2-core machine): the fragment bomb 1.5 s at 16 levels (doubling with each level), a
# binary tree of `parent` fields 5 s, 990 `me { name }` 1.4 s, 300 `__schema` 1.2-2.5 s, 1,200
# conflicting aliases 2.5 s, 200,000 IDs in a variable 1.6-1.9 s, a 1 MiB string literal 0.2 s;
# a chain of 250 fragments answered "maximum recursion depth exceeded", an Int literal of 5,000
# digits an INTERNAL_ERROR. Each is now refused in milliseconds, with a code.

# Refused documents take a few milliseconds. The bounds are generous, and measured in CPU time
# of this process (which runs the app) where they can be: a loaded machine stretches wall time.
ONE_SECOND = 1.0
HEALTHZ_WAIT = 3.0  # wall time: /healthz must not wait for the bomb (it waited 30 s for it)


def fragment_bomb(levels: int) -> str:
    """``F{n}`` spreads ``F{n-1}`` twice: 2**levels fields once expanded, in ~35 bytes a level."""
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"query {{ ...F{levels} }} " + " ".join(fragments)


def _tree(depth: int) -> str:
    return (
        "id" if depth == 0 else f"parent {{ {_tree(depth - 1)} }} parent {{ {_tree(depth - 1)} }}"
    )


HOSTILE: dict[str, str] = {
    "same field 1,990 times": "{ me { " + "name " * 1990 + "} }",
    "same root field 990 times": "{ " + "me { name } " * 990 + "}",
    "binary tree of parents": "{ devices { edges { node { " + _tree(9) + " } } } }",
    "__schema 300 times": "{ " + "__schema { types { name fields { name } } } " * 300 + "}",
    "__schema under 50 aliases": "{ "
    + " ".join(f"s{i}: __schema {{ types {{ name }} }}" for i in range(50))
    + " }",
    "conflicting aliases": "{ me { " + " ".join(f"a: {f}" for f in ["name", "id"] * 600) + "} }",
    "inline fragments repeated": '{ node(id: "x") { '
    + "... on Device { id name } ... on Organization { id name } " * 150
    + "} }",
    "500 operations": " ".join(f"query Q{i} {{ __typename }}" for i in range(500)),
    "300 variables": "query(" + " ".join(f"$v{i}: Int" for i in range(300)) + ") { me { name } }",
    "fragment chain 60 long": "query { ...C0 } "
    + " ".join(f"fragment C{i} on Query {{ ...C{i + 1} }}" for i in range(60))
    + " fragment C60 on Query { __typename }",
    "inline fragments 150 deep": "{ me { " + "... on User { " * 150 + "name" + " }" * 150 + " } }",
    "Int literal of 5,000 digits": "{ devices(first: " + "1" * 5000 + ") { totalCount } }",
}


async def _timed(api: GraphQLClient, query: str) -> tuple[dict[str, Any], float]:
    """The answer, and the CPU time taken to get it."""
    start = time.process_time()
    body = await api.execute(query)
    return body, time.process_time() - start


async def test_a_fragment_bomb_is_refused_at_once_and_healthz_stays_fast(
    api: GraphQLClient,
) -> None:
    """20 levels: about a million fields once expanded, in 820 bytes."""
    bomb = fragment_bomb(20)
    assert len(bomb) < 1000
    start = time.perf_counter()
    refused = asyncio.create_task(api.post(bomb))
    health = await api.http.get("/healthz")
    health_seconds = time.perf_counter() - start
    response = await refused
    assert health.status_code == 200 and health_seconds < HEALTHZ_WAIT
    assert time.perf_counter() - start < HEALTHZ_WAIT
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "fragments are expanded" in error["message"]


async def test_a_user_without_crm_access_gets_the_same_refusal(api: GraphQLClient) -> None:
    nobody = await make_user(api, "nobody", crm_access=False, add=False, edit=False)
    body, seconds = await _timed(nobody, fragment_bomb(21))
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert seconds < ONE_SECOND


@pytest.mark.parametrize("levels", [12, 21, 40])
async def test_fragment_bombs_of_any_depth_are_refused_every_time(
    api: GraphQLClient, levels: int
) -> None:
    for _ in range(2):  # the second time, the parsed document comes from the cache
        body, seconds = await _timed(api, fragment_bomb(levels))
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert seconds < ONE_SECOND


@pytest.mark.parametrize("shape", list(HOSTILE))
async def test_costly_documents_are_refused_quickly_with_a_code(
    api: GraphQLClient, shape: str
) -> None:
    body, seconds = await _timed(api, HOSTILE[shape])
    assert body["data"] is None, shape
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    assert seconds < ONE_SECOND, (shape, seconds)


async def test_a_long_query_text_is_refused_before_parsing(api: GraphQLClient) -> None:
    literal = '{ device(id: "' + "x" * (MAX_BODY_BYTES - 100) + '") { id } }'
    body, seconds = await _timed(api, literal)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_LARGE"
    assert "variables" in error["message"]
    assert seconds < ONE_SECOND
    # The same value as a variable is fine.
    query = "query($id: ID!) { device(id: $id) { id } }"
    assert await api.ok(query, id="x" * (MAX_QUERY_CHARS + 1)) == {"device": None}


async def test_a_request_with_too_many_values_is_refused_at_the_door(api: GraphQLClient) -> None:
    start = time.process_time()
    response = await api.post(
        "mutation($ids: [ID!]!) { forceUpdate(ids: $ids) { results { deviceId } } }",
        ids=["a"] * 200_000,
    )
    assert time.process_time() - start < ONE_SECOND
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "REQUEST_TOO_COMPLEX"
    # Just under the bound, the request reaches the API (which allows 100 IDs at most).
    allowed = await api.execute(
        "mutation($ids: [ID!]!) { forceUpdate(ids: $ids) { results { deviceId } } }",
        ids=["a"] * (MAX_BODY_VALUES - 20),
    )
    assert allowed["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{ ...Nope }", "Unknown fragment 'Nope'."),
        (
            "{ ...A0 } "
            + " ".join(
                f"fragment A{i} on Query {{ "
                + " ".join(f"...A{j}" for j in range(8) if j != i)
                + " }"
                for i in range(8)
            ),
            "within itself",
        ),
    ],
)
async def test_unknown_and_cyclic_fragments_are_plain_validation_errors(
    api: GraphQLClient, query: str, message: str
) -> None:
    body, seconds = await _timed(api, query)
    assert body["data"] is None and message in body["errors"][0]["message"]
    assert seconds < ONE_SECOND


async def test_documents_within_the_bounds_still_run(api: GraphQLClient) -> None:
    """What clients do: GraphiQL's introspection, fragments, a few repeats and operations."""
    introspection = await api.ok(
        get_introspection_query(
            descriptions=True,
            specified_by_url=True,
            directive_is_repeatable=True,
            schema_description=True,
            input_value_deprecation=True,
        )
    )
    assert introspection["__schema"]["queryType"]["name"] == "Query"
    shared = (
        "query Mine { me { ...U ...U name } } query Other { me { ...U } } "
        "fragment U on User { name id }"
    )
    for name in ("Mine", "Other"):
        response = await api.http.post(
            "/graphql",
            json={"query": shared, "operationName": name},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert response.json()["data"]["me"]["name"] == "admin"
    assert await api.ok("{ me { " + "name " * 40 + "} }") == {"me": {"name": "admin"}}
    nested = "{ me { " + "... on User { " * 30 + "name" + " }" * 30 + " } }"
    assert await api.ok(nested) == {"me": {"name": "admin"}}
