"""Who is calling: the bearer token of a request, and the answer when it stands for no one."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from tracking.manage import access
from tracking.manage.access import Viewer
from tracking.refresh.services import Services

TOKEN_REQUIRED = "A valid API token is required (Authorization: Bearer <token>)."  # noqa: S105


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def viewer_of(request: Request, services: Services) -> Viewer | None:
    """The viewer the request's token stands for (read off the event loop), or None."""
    token = bearer_token(request)
    if token is None:
        return None
    return await run_in_threadpool(access.authenticate, services.engine, token)


def unauthorized(*, graphql: bool = False) -> JSONResponse:
    """401 with ``WWW-Authenticate: Bearer``; a GraphQL client gets a GraphQL error body."""
    body: dict[str, object] = {"error": TOKEN_REQUIRED}
    if graphql:
        body = {"errors": [{"message": TOKEN_REQUIRED, "extensions": {"code": "UNAUTHENTICATED"}}]}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
