"""The depth, alias and token limits hold for every request, also once a query text is cached."""

from __future__ import annotations

from api.schema import MAX_ALIASES, MAX_CACHED_QUERY, MAX_DEPTH, MAX_TOKENS
from tests.api import helpers
from tests.conftest import GraphQLClient
from tests.fakes import pki

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
