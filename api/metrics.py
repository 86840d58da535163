"""``GET /metrics``: the Prometheus text format, for an administrator's bearer token.

The exposition is rendered in a worker thread (a scrape of 100,000 devices reads the
database for a second or more; ``/healthz`` and GraphQL keep answering meanwhile), spooled
with bounded memory (``tracking.metrics.MetricsCollector.exposition``: the bytes
``generate_latest`` would give for the collector) and streamed.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tracking.manage import access
from tracking.metrics import MetricsCollector
from tracking.refresh.services import Services


def metrics_route(services: Services, token_of: Callable[[Request], str | None]) -> Route:
    """``GET /metrics`` over the app's database; ``token_of`` reads the bearer token."""
    collector = MetricsCollector(services.engine)

    async def metrics(request: Request) -> Response:
        token = token_of(request)
        viewer = (
            await run_in_threadpool(access.authenticate, services.engine, token) if token else None
        )
        if viewer is None:
            return PlainTextResponse(
                "A valid API token is required (Authorization: Bearer <token>).\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not viewer.is_admin:
            return PlainTextResponse("Metrics are for administrators only.\n", status_code=403)
        exposition = await run_in_threadpool(collector.exposition)
        return StreamingResponse(exposition.chunks(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return Route("/metrics", metrics, methods=["GET"])
