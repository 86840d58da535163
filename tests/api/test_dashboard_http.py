"""The dashboard over HTTP: the page and its files, their headers, and nothing else served."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from api.dashboard import STATIC_FILES
from tests.conftest import GraphQLClient


class _Inline(HTMLParser):
    """What a strict Content-Security-Policy would block: inline scripts, styles, handlers,
    and any URL of another origin."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self._in_script = True
            self.scripts.append(named.get("src") or "")
            if not named.get("src"):
                self.blocked.append("inline <script>")
        if tag == "style":
            self.blocked.append("<style>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.blocked.append(f"{tag} {name}=")
            if name in ("src", "href", "action") and value and re.match(r"\w+:|//", value):
                self.blocked.append(f"{tag} {name}={value}")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.blocked.append("inline script text")


async def test_the_page_is_served_at_the_root_with_a_strict_policy(api: GraphQLClient) -> None:
    response = await api.http.get("/", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'none'"  # a token can never be posted in a URL
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in response.headers
    page = _Inline()
    page.feed(response.text)
    assert page.blocked == []
    assert page.scripts == ["/static/dashboard.js"]
    for testid in ("token-input", "token-submit", "expiring-table", "org-filter"):
        assert f'data-testid="{testid}"' in response.text
    for testid in ("window-filter", "alerts-list", "expiry-chart"):
        assert f'data-testid="{testid}"' in response.text


@pytest.mark.parametrize("name", sorted(STATIC_FILES))
async def test_every_file_of_the_page_is_served(api: GraphQLClient, name: str) -> None:
    response = await api.http.get(f"/static/{name}")
    assert response.status_code == 200
    expected = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
    assert response.headers["content-type"].startswith(expected[name.rsplit(".", 1)[1]])
    assert response.headers["x-content-type-options"] == "nosniff"
    # Scripts import only files served here, by relative path.
    for imported in re.findall(r'from "([^"]+)"', response.text):
        assert imported.startswith("./") and imported[2:] in STATIC_FILES, imported

    again = await api.http.get(
        f"/static/{name}", headers={"If-None-Match": response.headers["etag"]}
    )
    assert (again.status_code, again.content) == (304, b"")


@pytest.mark.parametrize(
    "path",
    [
        "/static/index.html",
        "/static/schema.graphql",
        "/static/..%2Fschema.graphql",
        "/static/%2e%2e/app.py",
        "/static/nope.js",
        "/static/",
    ],
)
async def test_nothing_else_is_served(api: GraphQLClient, path: str) -> None:
    response = await api.http.get(path)
    assert response.status_code == 404
    assert "schema" not in response.text and "import" not in response.text


async def test_the_page_needs_no_token_but_graphql_still_does(api: GraphQLClient) -> None:
    assert (await api.http.get("/")).status_code == 200
    assert (await api.http.head("/")).status_code == 200
    response = await api.post("{ me { name } }", token="wrong")
    assert response.status_code == 401
