"""``GET /export/devices.csv``: the devices the bearer token may see, streamed as CSV."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api.auth import unauthorized, viewer_of
from api.headers import RAW_FILE_HEADERS
from tracking.core.errors import ErrorCode, ValidationError
from tracking.manage import exports
from tracking.refresh.services import Services


async def devices_csv(request: Request) -> Response:
    """Query parameters ``organizationId``, ``category``, ``expiringWithinDays``; a bad one is
    a 400 (an organization the token may not see: 404, as one that does not exist)."""
    services: Services = request.app.state.services
    viewer = await viewer_of(request, services)
    if viewer is None:
        return unauthorized()
    parameters = request.query_params.multi_items()
    names = [name for name, _ in parameters]
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        return JSONResponse({"error": f"{repeated[0]} is given more than once."}, status_code=400)
    try:
        filters = await run_in_threadpool(
            exports.export_filter, services.engine, viewer, dict(parameters)
        )
    except ValidationError as error:
        status = 404 if error.code == ErrorCode.NOT_FOUND else 400
        return JSONResponse({"error": error.message}, status_code=status)
    export = exports.DeviceExport(services.engine, viewer, filters)
    return StreamingResponse(
        export.chunks(),  # a plain iterator: Starlette reads each batch in a worker thread
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="devices.csv"',
            "Cache-Control": "no-store",
            **RAW_FILE_HEADERS,  # a download, never a page
        },
    )
