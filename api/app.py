"""The Starlette application: GraphQL (+ GraphiQL), the dashboard, health, RAW file downloads,
metrics."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from api import dashboard, export
from api.context import Context
from api.headers import RAW_FILE_HEADERS, NoSniff, cors, graphiql_page
from api.metrics import metrics_route
from api.schema import schema
from models.db import create_engine
from tracking.core.ids import decode_pk
from tracking.core.settings import Settings
from tracking.manage import access, inventory, queries
from tracking.manage.access import Viewer
from tracking.refresh.services import Services
from tracking.wiring import build_services

log = logging.getLogger("dstrack.api")

MAX_BODY_BYTES = 1024 * 1024
# JSON values (strings, numbers, keys…) in one body: graphql-core coerces variables one value at
# a time, about 100,000 a second - 1 MiB of them would hold the event loop for seconds.
MAX_BODY_VALUES = 10_000


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": "A valid API token is required (Authorization: Bearer <token>).",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ]
        },
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


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
            await _unauthorized()(scope, receive, send)
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


def _graphql_route(graphql: TokenGate, settings: Settings) -> Route:
    """``/graphql``, callable from the browser front-ends of ``DSTRACK_CORS_ORIGINS`` (if any).

    Only with the bearer token in the ``Authorization`` header: no cookies or other credentials,
    and an origin not listed gets no CORS headers at all.
    """
    if not settings.cors_origins:
        return Route("/graphql", graphql, methods=["GET", "POST"])
    with_cors = cors(graphql, settings.cors_origins)
    return Route("/graphql", with_cors, methods=["GET", "POST", "OPTIONS"])


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Starlette:
    """Build the app; the database must already be migrated (``dstrack migrate``)."""
    if services is None:
        settings = settings or Settings.from_env()
        services = build_services(settings, create_engine(settings.database_url))
    inventory.ensure_system_data(services.engine)
    if services.settings.admin_token:
        access.ensure_admin_token(services.engine, services.settings.admin_token)

    async def healthz(request: Request) -> Response:
        try:
            with services.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            log.exception("health check failed")
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        if problem := services.raw_store.problem():
            return JSONResponse(
                {"status": "storage unavailable", "reason": problem}, status_code=503
            )
        return JSONResponse({"status": "ok"})

    async def raw_file(request: Request) -> Response:
        token = bearer_token(request)
        viewer = access.authenticate(services.engine, token) if token else None
        if viewer is None:
            return _unauthorized()
        pk = decode_pk(request.path_params["raw_id"], "RawFile")
        row = queries.visible_raw_file(services.engine, viewer, pk) if pk else None
        if row is None:
            return JSONResponse({"error": "RAW file not found."}, status_code=404)
        try:
            content = services.raw_store.get(row.sha256)
        except FileNotFoundError:
            log.error("RAW file %s: its content %s is missing from the store", row.id, row.sha256)
            return JSONResponse(
                {"error": "The content of this RAW file is missing from the store."},
                status_code=410,
            )
        return Response(
            content,
            media_type=row.content_type,
            headers={
                "Content-Disposition": f'attachment; filename="{row.file_name}"',
                **RAW_FILE_HEADERS,
            },
        )

    app = Starlette(
        routes=[
            _graphql_route(TokenGate(DstrackGraphQL(services), services), services.settings),
            Route("/healthz", healthz),
            Route("/raw/{raw_id}", raw_file),
            Route("/export/devices.csv", export.devices_csv),
            metrics_route(services, bearer_token),
            *dashboard.routes,
        ],
        middleware=[Middleware(NoSniff)],
    )
    app.state.services = services
    return app
