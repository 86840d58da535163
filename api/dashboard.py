"""The dashboard: the page at ``/`` and its static files, served with a strict CSP."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

# Everything comes from this origin: no inline script or style, no other host, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidated (ETag) so an upgrade shows at once
}
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
STATIC_FILES = frozenset(
    {
        "dashboard.js",
        "api.js",
        "alerts.js",
        "chart.js",
        "devices.js",
        "dom.js",
        "dashboard.css",
        "favicon.svg",
    }
)


@dataclass(frozen=True)
class _File:
    content: bytes
    media_type: str
    etag: str


@cache
def _file(name: str) -> _File:
    content = (resources.files("api") / "static" / name).read_bytes()
    media_type = _MEDIA_TYPES[name[name.rindex(".") :]]
    return _File(content, media_type, f'"{hashlib.sha256(content).hexdigest()[:32]}"')


def _serve(request: Request, name: str) -> Response:
    found = _file(name)
    headers = {**_HEADERS, "ETag": found.etag}
    if found.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(found.content, media_type=found.media_type, headers=headers)


async def page(request: Request) -> Response:
    return _serve(request, "index.html")


async def static_file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_FILES:
        return PlainTextResponse("Not found.", status_code=404, headers=_HEADERS)
    return _serve(request, name)


routes: list[BaseRoute] = [
    Route("/", page, methods=["GET"]),
    Route("/static/{name}", static_file, methods=["GET"]),
]
