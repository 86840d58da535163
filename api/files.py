"""``/healthz`` and ``/raw/{id}``: whether the service can work, and a RAW file download."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import unauthorized, viewer_of
from api.headers import RAW_FILE_HEADERS
from tracking.core.ids import decode_pk
from tracking.manage import queries
from tracking.refresh.services import Services

log = logging.getLogger("dstrack.api")


async def healthz(request: Request) -> Response:
    """200 when the database answers and RAW files can be written, else 503 and why."""
    services: Services = request.app.state.services
    try:
        with services.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        log.exception("health check failed")
        return JSONResponse({"status": "database unavailable"}, status_code=503)
    if problem := services.raw_store.problem():
        return JSONResponse({"status": "storage unavailable", "reason": problem}, status_code=503)
    return JSONResponse({"status": "ok"})


async def raw_file(request: Request) -> Response:
    """A RAW file, for a token that may see its device; 410 when its content is gone."""
    services: Services = request.app.state.services
    viewer = await viewer_of(request, services)
    if viewer is None:
        return unauthorized()
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
