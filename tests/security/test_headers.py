"""Security headers: GraphiQL's Content-Security-Policy and framing, nosniff everywhere, RAW
files as sandboxed downloads, and ``/`` leading to the API."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx

from tests.api import helpers
from tests.conftest import ADMIN_TOKEN, GraphQLClient
from tests.fakes import pki

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = [d.split() for d in response.headers["content-security-policy"].split(";")]
    return {d[0]: d[1:] for d in directives if d}


async def test_graphiql_has_a_policy_that_allows_exactly_what_the_page_loads(
    api: GraphQLClient,
) -> None:
    response = await api.http.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    page, policy = response.text, _policy(response)
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page)
    stylesheets = re.findall(r'<link[^>]*\bhref="(https://[^"]+)"', page)
    inline = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert scripts and stylesheets and len(inline) == 1
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    ]
    assert sorted(policy["script-src"]) == sorted(scripts + hashes)
    assert set(stylesheets) <= set(policy["style-src"])
    assert all(url.startswith("https://unpkg.com/") for url in scripts + stylesheets)
    assert policy["default-src"] == ["'none'"] and policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert "'unsafe-eval'" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_graphiql_does_not_keep_the_token_in_the_browser(api: GraphQLClient) -> None:
    page = (await api.http.get("/graphql", headers=BROWSER)).text
    assert "shouldPersistHeaders: false" in page
    assert "shouldPersistHeaders: true" not in page


async def test_json_answers_are_nosniff(api: GraphQLClient) -> None:
    answers = [
        await api.post("{ me { name } }"),
        await api.post("{ me { nope } }"),
        await api.http.post("/graphql", json={"query": "{ me { name } }"}),  # 401
        await api.http.post("/graphql", content=b"[1]", headers=_admin()),  # 400
        await api.http.get("/healthz"),
        await api.http.get("/raw/nope", headers=_admin()),  # 404
    ]
    assert [r.status_code for r in answers] == [200, 200, 401, 400, 200, 404]
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


def _admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_raw_files_are_sandboxed_downloads(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, pki.test_ca().leaf("raw.example").pem)
    data = await api.ok(
        "query($id: ID!) { device(id: $id) { rawFiles { url fileName } } }", id=device["id"]
    )
    [raw] = data["device"]["rawFiles"]
    response = await api.http.get(raw["url"], headers=_admin())
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="{raw["fileName"]}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"


async def test_the_front_door_is_the_dashboard_and_leads_to_the_api(api: GraphQLClient) -> None:
    response = await api.http.get("/", headers=BROWSER)
    assert response.status_code == 200
    assert "<title>dstrack: what expires soon</title>" in response.text
    assert 'href="/graphql"' in response.text
    graphiql = await api.http.get("/graphql", headers=BROWSER)
    assert graphiql.status_code == 200 and "graphiql" in graphiql.text.lower()
