"""A threaded HTTP(S) server on 127.0.0.1 that records every request and answers as scripted.

It receives webhooks and Apprise's ``json://`` posts, serves CRLs and plays broken OCSP
responders. Every request becomes a :class:`ReceivedRequest` in ``.requests``; what it answers
is, in order: the next of the answers queued with :meth:`HttpReceiver.script` (one per request,
whatever the path), else the :class:`Answer` routed to the path with :meth:`HttpReceiver.route`,
else ``default`` (200, empty body). An :class:`Answer` can be slow (``delay``), never come
(``hang``), be a dropped connection (``drop``), bytes that are no HTTP (``raw``) or a body
without Content-Length (``stream``)::

    with HttpReceiver() as hook:
        hook.script(Answer(500), Answer(500))          # then the default 200
        ... deliver to f"{hook.url}/hook" ...
        [first, *_] = hook.wait_for_requests(3)
        verify_standard_webhook(secret, first.headers, first.body)

``HttpReceiver(tls=True)`` serves HTTPS with ``certificate`` (``hooks.test`` by default).
Fixtures: ``http_receiver``, ``https_receiver``.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import pytest

from tests.fakes import pki
from tests.fakes.tls_server import HOST, ServedCertificate, served, server_context

HTTP_HOST_NAME = "hooks.test"
# The longest a handler waits (``hang``, ``delay``) or reads; close() cuts it short.
HOLD_S = 30.0


@cache
def http_certificate() -> ServedCertificate:
    ca = pki.test_ca()
    return served(ca.leaf(HTTP_HOST_NAME), ca.intermediate)


@dataclass(frozen=True)
class Answer:
    """What the receiver does with one request."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer; hold the connection until the client leaves or close()
    drop: bool = False  # close the connection without a byte of answer
    raw: bytes | None = None  # send these bytes instead of an HTTP answer, then close
    stream: bool = False  # no Content-Length: the body ends when the connection closes


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]  # names in lower case
    body: bytes
    tls: bool

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """See the module docstring."""

    def __init__(
        self,
        *,
        tls: bool = False,
        certificate: ServedCertificate | None = None,
        default: Answer | None = None,
        host_name: str = HOST,
    ) -> None:
        self.tls = tls
        self.certificate = certificate or http_certificate()
        self.default = default or Answer()
        self.host_name = host_name
        self.routes: dict[str, Answer] = {}
        self._scripted: collections.deque[Answer] = collections.deque()
        self._requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._context = server_context(self.certificate) if tls else None
        self._server = _Server((HOST, 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle --
    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown_connections()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()  # joins the handler threads
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- addresses --
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http(s)://HOST:PORT`` without a trailing slash."""
        return f"{'https' if self.tls else 'http'}://{self.host_name}:{self.port}"

    # -- scripting and records --
    def script(self, *answers: Answer) -> None:
        """Queue answers for the next requests, one each, before routes and the default."""
        with self._lock:
            self._scripted.extend(answers)

    def route(self, path: str, answer: Answer) -> None:
        """Answer every request for ``path`` (without the query string) with ``answer``."""
        with self._lock:
            self.routes[path] = answer

    def serve_bytes(self, path: str, body: bytes, content_type: str) -> str:
        """Serve ``body`` at ``path``; returns its full URL."""
        self.route(path, Answer(body=body, content_type=content_type))
        return f"{self.url}{path}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """The requests once at least ``count`` arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self._requests)} request(s), expected {count}")
                self._arrived.wait(left)
            return list(self._requests)

    def _record(self, request: ReceivedRequest) -> Answer:
        with self._lock:
            self._requests.append(request)
            self._arrived.notify_all()
            if self._scripted:
                return self._scripted.popleft()
            return self.routes.get(request.path.split("?", 1)[0], self.default)


class _Server(ThreadingHTTPServer):
    """Handler threads are joined on close; open connections can be cut."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._open_lock:
            (self._open.add if add else self._open.discard)(sock)

    def shutdown_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-answer is what the fault tests do


def _handler(fake: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = HOLD_S

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            server: _Server = self.server  # type: ignore[assignment]
            server.track(self.request, True)
            if fake._context is not None:
                raw = self.request
                raw.settimeout(HOLD_S)
                self.request = fake._context.wrap_socket(
                    raw, server_side=True, do_handshake_on_connect=False
                )
                server.track(raw, False)
                server.track(self.request, True)
                try:
                    self.request.do_handshake()
                except OSError:
                    server.track(self.request, False)
                    self.request.close()
                    raise
            super().setup()

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                server: _Server = self.server  # type: ignore[assignment]
                server.track(self.request, False)
                if isinstance(self.request, ssl.SSLSocket):  # the server closes the raw one
                    self.request.close()

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except (OSError, ssl.SSLError):
                self.close_connection = True

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = b""
                while size := int(self.rfile.readline(100).split(b";")[0].strip() or b"0", 16):
                    body += self.rfile.read(size)
                    self.rfile.readline(10)
                while self.rfile.readline(1000).strip():  # trailers, up to the empty line
                    pass
                return body
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _receive(self) -> None:
            body = self._read_body()
            answer = fake._record(
                ReceivedRequest(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    tls=fake.tls,
                )
            )
            self._answer(answer)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _receive

        def _answer(self, answer: Answer) -> None:
            if answer.hang:
                fake._stop.wait(HOLD_S)
                self.close_connection = True
                return
            if answer.delay and fake._stop.wait(answer.delay):
                self.close_connection = True
                return
            if answer.drop or answer.raw is not None:
                self.wfile.write(answer.raw or b"")
                self.close_connection = True
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.stream:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                for start in range(0, len(answer.body), 65536):
                    self.wfile.write(answer.body[start : start + 65536])

    return Handler


# -- Standard Webhooks ----------------------------------------------------------------------------


class WebhookSignatureError(AssertionError):
    """A request that a Standard Webhooks receiver would refuse."""


def standard_webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the secret's bytes.

    The secret is ``whsec_`` followed by the base64 of the key (the prefix is optional).
    """
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise WebhookSignatureError(f"the secret is not base64 after whsec_: {exc}") from None
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def verify_standard_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> None:
    """Check a request as the Standard Webhooks spec says a receiver must; raise
    :class:`WebhookSignatureError` saying why not.

    ``headers`` in lower case (as :attr:`ReceivedRequest.headers`): ``webhook-id``,
    ``webhook-timestamp`` (integer seconds, within ``tolerance_s`` of ``now``) and
    ``webhook-signature`` (space-separated ``v<n>,<base64>``, one ``v1`` of which must match).
    """
    missing = [
        h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if h not in headers
    ]
    if missing:
        raise WebhookSignatureError(f"missing header(s): {', '.join(missing)}")
    try:
        timestamp = int(headers["webhook-timestamp"])
    except ValueError:
        raise WebhookSignatureError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookSignatureError(f"webhook-timestamp {timestamp} is too far from {current:.0f}")
    expected = standard_webhook_signature(secret, headers["webhook-id"], timestamp, body)
    offered = headers["webhook-signature"].split(" ")
    if not any(hmac.compare_digest(expected.encode(), s.encode()) for s in offered):
        raise WebhookSignatureError("no v1 signature matches")


# -- pytest fixtures ----------------------------------------------------------------------------


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def https_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver(tls=True) as receiver:
        yield receiver
