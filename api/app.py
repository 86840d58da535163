"""The Starlette application: GraphQL (+ GraphiQL), the dashboard, health, RAW files, CSV
export and metrics."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from api import dashboard, export, files
from api.gate import MAX_BODY_BYTES, MAX_BODY_VALUES, DstrackGraphQL, TokenGate, graphql_route
from api.headers import NoSniff
from api.metrics import metrics_route
from models.db import create_engine
from tracking.core.settings import Settings
from tracking.manage import access, inventory
from tracking.refresh.services import Services
from tracking.wiring import build_services

__all__ = ["MAX_BODY_BYTES", "MAX_BODY_VALUES", "create_app"]


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Starlette:
    """Build the app; the database must already be migrated (``dstrack migrate``)."""
    if services is None:
        settings = settings or Settings.from_env()
        services = build_services(settings, create_engine(settings.database_url))
    inventory.ensure_system_data(services.engine)
    if services.settings.admin_token:
        access.ensure_admin_token(services.engine, services.settings.admin_token)
    app = Starlette(
        routes=[
            graphql_route(TokenGate(DstrackGraphQL(services), services), services.settings),
            Route("/healthz", files.healthz),
            Route("/raw/{raw_id}", files.raw_file),
            Route("/export/devices.csv", export.devices_csv),
            metrics_route(services),
            *dashboard.routes,
        ],
        middleware=[Middleware(NoSniff)],
    )
    app.state.services = services
    return app
