"""``GET /metrics``: the Prometheus text format, for an administrator's bearer token.

The exposition is rendered in a worker thread (a scrape of 100,000 devices reads the
database for a second or more; ``/healthz`` and GraphQL keep answering meanwhile), spooled
with bounded memory (``tracking.metrics.MetricsCollector.exposition``: the bytes
``generate_latest`` would give for the collector) and streamed.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from api.auth import TOKEN_REQUIRED, viewer_of
from tracking.metrics import MetricsCollector
from tracking.refresh.services import Services


def metrics_route(services: Services) -> Route:
    """``GET /metrics`` over the app's database."""
    collector = MetricsCollector(services.engine)

    async def metrics(request: Request) -> Response:
        viewer = await viewer_of(request, services)
        if viewer is None:
            return PlainTextResponse(
                TOKEN_REQUIRED + "\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if not viewer.is_admin:
            return PlainTextResponse("Metrics are for administrators only.\n", status_code=403)
        exposition = await run_in_threadpool(collector.exposition)
        return StreamingResponse(exposition.chunks(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return Route("/metrics", metrics, methods=["GET"])
