"""Secrets kept out of the logs: PEM blocks and tokens masked in logged queries and errors.

A mutation may carry a certificate and its private key, a webhook secret or an API token, in
its text or in its variables, and graphql-core quotes both in its error messages (a variable's
value is quoted shortened, so a PEM block may have lost its BEGIN or its END line). What dstrack
logs about a GraphQL error is therefore built here: the message, the location and a short
excerpt of the query, each with these secrets masked.
"""

from __future__ import annotations

import logging
import re
import traceback

from graphql import GraphQLError
from strawberry.types import ExecutionContext

MASK = "[REDACTED]"
MAX_MESSAGE = 2_000  # characters of a logged message
EXCERPT = 60  # characters of the query logged on each side of an error's location

# A PEM block; when a quoted value was shortened it ends at the quote (or the end of the text).
_PEM = re.compile(r"(-----BEGIN ([A-Z0-9 ]{1,64})-----)(.*?)(-----END \2-----|\Z)", re.S)
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{1,64}-----")
_QUOTES = re.compile(r"(['\"])")
_TOKENS = re.compile(
    r"(?i:\b(bearer\s+))[A-Za-z0-9\-._~+/]+=*"  # an Authorization header's value
    r"|\b(dst_)[A-Za-z0-9_\-]+"  # a dstrack API token
    r"|\b(whsec_)[A-Za-z0-9+/=_\-]+"  # a Standard Webhooks signing secret
)


def _hide(text: str, keep_layout: bool) -> str:
    if not text:
        return text
    return re.sub(r"[^\r\n]", "*", text) if keep_layout else MASK


def _redact_pem(piece: str, keep_layout: bool) -> str:
    """PEM blocks in a piece of text without quotes (a value, or what lies between values).

    A block whose END line is missing is masked to the end of the piece; what precedes an
    END line whose BEGIN line is missing (both happen when a quoted value was shortened, or
    in an excerpt) is masked from the start of the piece or the previous END line, unless it
    is masked already.
    """
    piece = _PEM.sub(lambda m: m[1] + _hide(m[3], keep_layout) + m[4], piece)
    if "-----END " not in piece:
        return piece
    parts, boundary = [], 0
    for end in _PEM_END.finditer(piece):
        before = piece[boundary : end.start()]
        masked = before.rstrip().endswith(("*", MASK))  # a block's body, or masked before
        parts.append(before if masked else _hide(before, keep_layout))
        parts.append(end[0])
        boundary = end.end()
    parts.append(piece[boundary:])
    return "".join(parts)


def redact(text: str, *, keep_layout: bool = False) -> str:
    """``text`` with PEM block contents and tokens masked.

    With ``keep_layout``, every masked character becomes ``*`` (line breaks stay), so that line
    and column numbers of a query still point at the same places.
    """

    def token(match: re.Match[str]) -> str:
        prefix = match[1] or match[2] or match[3] or ""
        return prefix + _hide(match[0][len(prefix) :], keep_layout)

    if "-----" in text:
        text = "".join(_redact_pem(piece, keep_layout) for piece in _QUOTES.split(text))
    return _TOKENS.sub(token, text)


def _excerpt(error: GraphQLError, redacted: dict[int, list[str]]) -> str | None:
    """The query around the error's first location, secrets masked (same line and column).

    ``redacted`` keeps the masked lines of each query text, masked once for all its errors.
    """
    if not error.source or not error.locations:
        return None
    body = error.source.body
    if id(body) not in redacted:
        redacted[id(body)] = redact(body, keep_layout=True).splitlines()
    lines = redacted[id(body)]
    location = error.locations[0]
    if not 0 < location.line <= len(lines):
        return None
    line = lines[location.line - 1]
    start = max(0, location.column - 1 - EXCERPT)
    return line[start : location.column - 1 + EXCERPT].strip()


def _operation_name(context: ExecutionContext | None) -> str | None:
    if context is None:
        return None
    try:
        return context.operation_name
    except Exception:  # a document that names no operation, or several
        return None


def describe(
    error: GraphQLError,
    context: ExecutionContext | None = None,
    redacted: dict[int, list[str]] | None = None,
) -> str:
    """One log line about a GraphQL error: message, code, where, and the query there."""
    parts = [redact(error.message)[:MAX_MESSAGE]]
    code = (error.extensions or {}).get("code")
    if code:
        parts.append(f"code={code}")
    if name := _operation_name(context):
        parts.append(f"operation={name}")
    if error.locations:
        parts.append("at " + ", ".join(f"{loc.line}:{loc.column}" for loc in error.locations[:3]))
    if error.path:
        parts.append("path=" + ".".join(str(key) for key in error.path))
    if excerpt := _excerpt(error, {} if redacted is None else redacted):
        parts.append(f"near: {excerpt}")
    return " | ".join(parts)


def describe_all(
    errors: list[GraphQLError], context: ExecutionContext | None, limit: int
) -> list[str]:
    """Log lines for the first ``limit`` errors of a request, and how many were left out."""
    redacted: dict[int, list[str]] = {}
    lines = [describe(error, context, redacted) for error in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"and {len(errors) - limit} more error(s) in the same request")
    return lines


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message and in the text of its traceback.

    The exception itself stays on the record (``exc_info``) for code that inspects it; what the
    standard formatters print is the redacted ``exc_text``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: the format alone
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        return True


def guard_loggers(*names: str) -> None:
    """Adds the redacting filter to these loggers (once)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
