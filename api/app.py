"""The Starlette application: GraphQL (+ GraphiQL), health and RAW file downloads."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL

from api.context import Context
from api.schema import schema
from models.db import create_engine
from tracking import access, inventory, queries
from tracking.access import Viewer
from tracking.ids import decode_pk
from tracking.services import Services, build_services
from tracking.settings import Settings

log = logging.getLogger("dstrack.api")

MAX_BODY_BYTES = 1024 * 1024


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

    async def get_context(self, request: Any, response: Any) -> Context:
        viewer: Viewer = request.state.viewer
        return Context(services=self.services, viewer=viewer)


class TokenGate:
    """Every GraphQL operation needs a valid token; only the GraphiQL page loads without one."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await Response(status_code=404)(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            await self.app(scope, receive, send)  # the GraphiQL page itself
            return
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await JSONResponse(
                {
                    "errors": [
                        {
                            "message": f"Request body larger than {MAX_BODY_BYTES} bytes.",
                            "extensions": {"code": "REQUEST_TOO_LARGE"},
                        }
                    ]
                },
                status_code=413,
            )(scope, receive, send)
            return
        token = bearer_token(request)
        viewer = access.authenticate(self.services.engine, token) if token else None
        if viewer is None:
            await _unauthorized()(scope, receive, send)
            return
        scope.setdefault("state", {})["viewer"] = viewer
        await self.app(scope, _limited(receive), send)


def _limited(receive: Receive) -> Receive:
    """Refuse bodies that grow beyond the limit without announcing their length."""
    seen = 0

    async def wrapped() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise ValueError("request body too large")
        return message

    return wrapped


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
        content = services.raw_store.get(row.sha256)
        return Response(
            content,
            media_type=row.content_type,
            headers={"Content-Disposition": f'attachment; filename="{row.file_name}"'},
        )

    graphql = TokenGate(DstrackGraphQL(services), services)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/raw/{raw_id}", raw_file),
        ]
    )
    app.state.services = services
    return app
