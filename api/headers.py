"""Security headers: nosniff on every answer, the GraphiQL page and its policy, and CORS.

GraphiQL is Strawberry's page. It loads React, GraphiQL, its explorer plugin and js-cookie from
unpkg.com (each with Subresource Integrity), runs one inline script and one inline style, and
GraphiQL's stylesheet imports its fonts (Roboto, Fira Code) from Google Fonts. The policy allows
exactly those scripts and stylesheets (by URL, read from the page itself), the inline script by
its hash, and requests to this server only. Styles may be inline: GraphiQL's dialogs insert style
elements at run time. The page no longer keeps the request headers - the bearer token - in the
browser's localStorage (``shouldPersistHeaders: false``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Imported by GraphiQL's stylesheet (graphiql.min.css), not named in the page.
GOOGLE_FONTS_CSS = "https://fonts.googleapis.com/css2"
GOOGLE_FONTS = "https://fonts.gstatic.com"

# A RAW file is a download, never a page: no script, no plugin, no frame runs from it.
RAW_FILE_HEADERS = {"Content-Security-Policy": "default-src 'none'; sandbox"}

_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", re.I)
_STYLESHEET = re.compile(r"<link\b[^>]*\brel=\"stylesheet\"[^>]*>", re.I)
_HREF = re.compile(r"\bhref=\"([^\"]+)\"", re.I)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S | re.I)


class GraphiQLPageError(RuntimeError):
    """Strawberry's page changed in a way the policy below does not know."""


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(page: str) -> str:
    """The policy allowing exactly what ``page`` loads and runs."""
    scripts = _SCRIPT_SRC.findall(page)
    stylesheets = [m[1] for link in _STYLESHEET.findall(page) if (m := _HREF.search(link))]
    inline = [_sha256(body) for body in _INLINE_SCRIPT.findall(page)]
    if not scripts or not inline:
        raise GraphiQLPageError("no scripts found in the GraphiQL page")
    directives = {
        "default-src": ["'none'"],
        "script-src": [*scripts, *inline],
        "style-src": [*stylesheets, GOOGLE_FONTS_CSS, "'unsafe-inline'"],
        "font-src": [GOOGLE_FONTS, "data:"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def graphiql_page(strawberry_page: str) -> tuple[str, dict[str, str]]:
    """The page to serve and its headers: no header persistence, a policy, no framing."""
    persisted = "shouldPersistHeaders: true"
    if strawberry_page.count(persisted) != 1:
        raise GraphiQLPageError("the GraphiQL page no longer says " + persisted)
    page = strawberry_page.replace(persisted, "shouldPersistHeaders: false")
    headers = {
        "Content-Security-Policy": content_security_policy(page),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
    return page, headers


class NoSniff:
    """Adds ``X-Content-Type-Options: nosniff`` to every HTTP answer of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
            await send(message)

        await self.app(scope, receive, send_nosniff)


class _ListedOriginsOnly(CORSMiddleware):
    """Starlette's CORS, except that a preflight from an origin not listed gets no CORS header."""

    def preflight_response(self, request_headers: Headers) -> Response:
        if not self.is_allowed_origin(request_headers["origin"]):
            return PlainTextResponse("Disallowed CORS origin", status_code=400)
        return super().preflight_response(request_headers)


def cors(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    """``app`` callable from browser front-ends at ``origins``: POST, with a bearer token.

    Only the ``Authorization`` and ``Content-Type`` headers; never credentials (cookies).
    """
    return _ListedOriginsOnly(
        app,
        allow_origins=list(origins),
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,
        max_age=600,
    )
