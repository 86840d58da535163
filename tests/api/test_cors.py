"""CORS on /graphql: only for the origins of DSTRACK_CORS_ORIGINS, with the bearer token in the
Authorization header and never with credentials; without the setting, no CORS at all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, GraphQLClient, api_client, services_with
from tracking.core.settings import Settings, parse_origins
from tracking.refresh.services import Services

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"
ME = {"query": "{ me { name } }"}


@pytest.fixture
async def cors_api(services: Services) -> AsyncIterator[GraphQLClient]:
    configured = services_with(services, cors_origins=(ALLOWED, "http://localhost:3000"))
    async with api_client(configured) as client:
        yield client


def _preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }


def _cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_a_listed_origin_may_send_the_token_and_read_the_answer(
    cors_api: GraphQLClient,
) -> None:
    preflight = await cors_api.http.options("/graphql", headers=_preflight_headers(ALLOWED))
    assert preflight.status_code == 200
    cors = _cors_headers(preflight)
    assert cors["access-control-allow-origin"] == ALLOWED
    assert cors["access-control-allow-methods"] == "POST"
    allowed_headers = {h.strip().lower() for h in cors["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert "access-control-allow-credentials" not in cors

    answer = await cors_api.http.post(
        "/graphql",
        json=ME,
        headers={"Origin": ALLOWED, "Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert answer.json() == {"data": {"me": {"name": "admin"}}}
    assert _cors_headers(answer) == {"access-control-allow-origin": ALLOWED}
    assert "Origin" in answer.headers["vary"]
    # A refusal is readable too, so that the front-end can tell the user.
    refused = await cors_api.http.post("/graphql", json=ME, headers={"Origin": ALLOWED})
    assert refused.status_code == 401
    assert _cors_headers(refused) == {"access-control-allow-origin": ALLOWED}


async def test_an_origin_not_listed_gets_no_cors_headers(cors_api: GraphQLClient) -> None:
    preflight = await cors_api.http.options("/graphql", headers=_preflight_headers(OTHER))
    assert preflight.status_code == 400
    assert _cors_headers(preflight) == {}
    answer = await cors_api.http.post(
        "/graphql", json=ME, headers={"Origin": OTHER, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert _cors_headers(answer) == {}


async def test_other_methods_and_headers_are_not_allowed(cors_api: GraphQLClient) -> None:
    for method, headers in (("PUT", "authorization"), ("POST", "authorization,x-custom")):
        preflight = await cors_api.http.options(
            "/graphql",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": headers,
            },
        )
        assert preflight.status_code == 400, (method, headers)


async def test_only_graphql_is_open_to_other_origins(cors_api: GraphQLClient) -> None:
    for path in ("/healthz", "/raw/x"):
        response = await cors_api.http.options(path, headers=_preflight_headers(ALLOWED))
        assert _cors_headers(response) == {}, path


async def test_without_the_setting_there_is_no_cors(api: GraphQLClient) -> None:
    preflight = await api.http.options("/graphql", headers=_preflight_headers(ALLOWED))
    assert preflight.status_code == 405
    assert _cors_headers(preflight) == {}
    answer = await api.http.post(
        "/graphql", json=ME, headers={"Origin": ALLOWED, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert answer.status_code == 200 and _cors_headers(answer) == {}


def test_the_setting_is_a_list_of_origins_as_browsers_send_them() -> None:
    settings = Settings.from_env(
        {"DSTRACK_CORS_ORIGINS": " https://App.Example.com:443/ , http://localhost:3000,"}
    )
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert Settings.from_env({}).cors_origins == ()
    assert parse_origins("http://[::1]:8080,https://a.example:8443") == (
        "http://[::1]:8080",
        "https://a.example:8443",
    )


@pytest.mark.parametrize(
    "value", ["*", "app.example.com", "https://app.example.com/path", "ftp://x", "https://u@x"]
)
def test_anything_but_an_origin_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="DSTRACK_CORS_ORIGINS"):
        Settings.from_env({"DSTRACK_CORS_ORIGINS": value})
