"""``/graphql``: every operation needs a valid token and a body fit to be parsed; only the
GraphiQL page loads without one."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from api.auth import bearer_token, unauthorized
from api.context import Context
from api.headers import cors, graphiql_page
from api.schema import schema
from tracking.core.settings import Settings
from tracking.manage import access
from tracking.manage.access import Viewer
from tracking.refresh.services import Services

MAX_BODY_BYTES = 1024 * 1024
# JSON values (strings, numbers, keys…) in one body: graphql-core coerces variables one value at
# a time, about 100,000 a second - 1 MiB of them would hold the event loop for seconds.
MAX_BODY_VALUES = 10_000


class DstrackGraphQL(GraphQL[Context, None]):
    def __init__(self, services: Services) -> None:
        super().__init__(schema, graphql_ide="graphiql", allow_queries_via_get=False)
        self.services = services
        self.page, self.page_headers = graphiql_page(self.graphql_ide_html)

    async def get_context(self, request: Any, response: Any) -> Context:
        viewer: Viewer = request.state.viewer
        return Context(services=self.services, viewer=viewer)


class TokenGate:
    """Every GraphQL operation needs a valid token; only the GraphiQL page loads without one."""

    def __init__(self, app: DstrackGraphQL, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await Response(status_code=404)(scope, receive, send)
            return
        request = Request(scope, receive)
        if _wants_graphiql(request):
            # Served here, not by Strawberry: its view builds the per-request context (which
            # needs a viewer) before it even looks at whether the page is asked for.
            page = HTMLResponse(self.app.page, headers=self.app.page_headers)
            await page(scope, receive, send)
            return
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await _too_large()(scope, receive, send)
            return
        token = bearer_token(request)
        viewer = access.authenticate(self.services.engine, token) if token else None
        if viewer is None:
            await unauthorized(graphql=True)(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except _BodyTooLarge:
            await _too_large()(scope, receive, send)
            return
        if body is None:
            return  # the client went away
        if problem := _body_problem(body):
            await _bad_request(*problem)(scope, receive, send)
            return
        scope.setdefault("state", {})["viewer"] = viewer
        await self.app(scope, _replay(body, receive), send)


def _wants_graphiql(request: Request) -> bool:
    """A browser asking for the page itself (an operation in the URL is an operation)."""
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


def _too_large() -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": f"Request body larger than {MAX_BODY_BYTES} bytes.",
                    "extensions": {"code": "REQUEST_TOO_LARGE"},
                }
            ]
        },
        status_code=413,
    )


def _bad_request(message: str, code: str = "BAD_REQUEST") -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=400
    )


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _body_problem(body: bytes) -> tuple[str, str] | None:
    """Why a body must not reach Strawberry (a message and a code), or None.

    Strawberry answers with a 500 a body that is not an object, that is not UTF-8 (it guesses
    UTF-16 from the first bytes) or that is nested past Python's recursion limit; and it echoes
    an unknown ``operationName`` in a plain-text answer that cannot encode a lone surrogate
    (another 500). JSON can carry lone surrogates (``"\\ud800"``), which are not text anyone
    can store or show: they are refused at the door. So is a body of more than
    ``MAX_BODY_VALUES`` values, which would take seconds to coerce.
    """
    if not body.strip():
        return None  # Strawberry says what is missing
    try:
        data = json.loads(body.decode("utf-8"))  # RFC 8259: JSON between systems is UTF-8
    except RecursionError:
        return "The request body is nested too deeply.", "BAD_REQUEST"
    except ValueError:  # UnicodeDecodeError included
        return "The request body is not JSON in UTF-8.", "BAD_REQUEST"
    if not isinstance(data, dict):
        return (
            "The request body must be one JSON object (batches are not accepted).",
            "BAD_REQUEST",
        )
    pending: list[Any] = [data]
    seen = 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > MAX_BODY_VALUES:
            return (
                f"The request has more than {MAX_BODY_VALUES} values (variables included).",
                "REQUEST_TOO_COMPLEX",
            )
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and _LONE_SURROGATE.search(value):
            return (
                "The request body is not valid Unicode text (it has a lone surrogate).",
                "BAD_REQUEST",
            )
    return None


class _BodyTooLarge(Exception):
    pass


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (at most ``MAX_BODY_BYTES``, else ``_BodyTooLarge``); None on disconnect.

    Bodies sent without a Content-Length (chunked) are bounded here, not only announced ones.
    """
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if message["type"] != "http.request":
            continue
        chunk: bytes = message.get("body", b"")
        seen += len(chunk)
        if seen > MAX_BODY_BYTES:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body over once, then the client's messages."""
    delivered = False

    async def replayed() -> Any:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def graphql_route(graphql: TokenGate, settings: Settings) -> Route:
    """``/graphql``, callable from the browser front-ends of ``DSTRACK_CORS_ORIGINS`` (if any).

    Only with the bearer token in the ``Authorization`` header: no cookies or other credentials,
    and an origin not listed gets no CORS headers at all.
    """
    if not settings.cors_origins:
        return Route("/graphql", graphql, methods=["GET", "POST"])
    with_cors = cors(graphql, settings.cors_origins)
    return Route("/graphql", with_cors, methods=["GET", "POST", "OPTIONS"])
