"""A real HTTP server on 127.0.0.1 playing IANA's bootstrap and the registries' RDAP services.

The bootstrap is the real IANA ``dns.json`` (fixture) with every base URL rewritten to
``http://HOST:PORT/<original host>/<original path>``; ``links`` of served answers are rewritten
the same way, so a registry's ``rel: related`` link leads to the registrar's fixture. HOST is
``host_name`` (127.0.0.1 by default; a name the tests' DNS server resolves works too), or an
alias per original host (e.g. ``localhost`` for a registrar, so that it is not the configured
host and the private-address guard applies to it). Answers are registered per domain
(optionally per registry host) and faults per domain::

    with FakeRdapServer() as rdap:
        rdap.add_domain("google.com", FIXTURES / "rdap/domains/verisign__google.com.json")
        rdap.set_fault("example.com", RdapFault.RATE_LIMITED)
        settings = Settings(rdap_bootstrap_url=rdap.bootstrap_url, allow_private_targets=True)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "registry"
IANA_BOOTSTRAP = FIXTURES / "rdap" / "iana-dns.json"


class RdapFault(StrEnum):
    NOT_FOUND = "404"
    RATE_LIMITED = "429"
    SERVER_ERROR = "500"
    SLOW = "slow"  # answers after `slow_seconds` (longer than the tests' timeouts)
    INVALID_JSON = "invalid_json"
    NOT_A_DOMAIN = "not_a_domain"  # valid JSON, but an error object with status 200
    REDIRECT = "redirect"  # 302 to /redirected/<domain>, which serves the answer
    REDIRECT_ELSEWHERE = "redirect_elsewhere"  # the same, but on host `localhost`
    REDIRECT_LOOP = "redirect_loop"
    REDIRECT_TO = "redirect_to"  # 302 to the location given with `redirect` (any scheme, port)
    HUGE = "huge"  # 3 MiB body with a Content-Length
    HUGE_STREAM = "huge_stream"  # 3 MiB body, no Content-Length (read until close)


HUGE_SIZE = 3 * 1024 * 1024


class FakeRdapServer:
    def __init__(
        self,
        bootstrap: Path = IANA_BOOTSTRAP,
        *,
        extra_services: Mapping[str, str] | None = None,
        host_name: str = "127.0.0.1",
        aliases: Mapping[str, str] | None = None,
        slow_seconds: float = 5.0,
    ) -> None:
        self.host_name = host_name
        self.aliases = dict(aliases or {})
        self._bootstrap_source = json.loads(bootstrap.read_text(encoding="utf-8"))
        self._extra_services = dict(extra_services or {})
        self.slow_seconds = slow_seconds
        self.answers: dict[tuple[str | None, str], dict[str, Any]] = {}
        self.faults: dict[str, RdapFault] = {}
        self.locations: dict[str, str] = {}
        self.bootstrap_fault: RdapFault | None = None
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle --
    def __enter__(self) -> FakeRdapServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- addresses --
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host_name}:{self.port}"

    @property
    def bootstrap_url(self) -> str:
        return f"{self.url}/dns.json"

    def localize(self, url: str) -> str:
        """``https://rdap.x.org/path`` -> ``http://HOST:PORT/rdap.x.org/path``."""
        parts = urlsplit(url)
        host = self.aliases.get(parts.hostname or "", self.host_name)
        return f"http://{host}:{self.port}/{parts.netloc}{parts.path}"

    # -- content --
    def add_domain(
        self, name: str, answer: Path | Mapping[str, Any], *, registry: str | None = None
    ) -> None:
        """Serve ``answer`` for ``name``; ``registry`` (a host name) limits it to that service."""
        data = json.loads(answer.read_text("utf-8")) if isinstance(answer, Path) else dict(answer)
        self.answers[(registry, name.lower())] = data

    def set_fault(self, name: str, fault: RdapFault) -> None:
        self.faults[name.lower()] = fault

    def redirect(self, name: str, location: str) -> None:
        """Answer the domain query for ``name`` with a 302 to ``location``."""
        self.set_fault(name, RdapFault.REDIRECT_TO)
        self.locations[name.lower()] = location

    def bootstrap(self) -> dict[str, Any]:
        services = [
            [suffixes, [self.localize(u) for u in urls]]
            for suffixes, urls in self._bootstrap_source["services"]
        ]
        for suffix, base in self._extra_services.items():
            services.insert(0, [[suffix], [self.localize(base)]])
        return {**self._bootstrap_source, "services": services}

    def answer_for(self, registry: str | None, name: str) -> dict[str, Any] | None:
        data = self.answers.get((registry, name)) or self.answers.get((None, name))
        if data is None and registry is None:  # /redirected/: any registry's answer
            data = next((d for (_, n), d in self.answers.items() if n == name), None)
        if data is None:
            return None
        links = [
            {k: self.localize(v) if k in ("href", "value") else v for k, v in link.items()}
            for link in data.get("links", [])
        ]
        return {**data, "links": links}


class _QuietServer(ThreadingHTTPServer):
    """Handler threads are joined on close, so no thread outlives the fake."""

    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-answer is what the fault tests do


def _handler(fake: FakeRdapServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 5  # an idle keep-alive connection cannot hold close() for longer

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            fake.requests.append(path)
            if path == "/dns.json":
                self._serve(fake.bootstrap_fault, fake.bootstrap(), path)
                return
            parts = path.strip("/").split("/")
            name = parts[-1].lower()
            if len(parts) >= 2 and parts[-2] == "domain":
                fault = fake.faults.get(name)
                self._serve(fault, fake.answer_for(parts[0], name), path)
            elif parts[0] == "redirected":
                self._serve(None, fake.answer_for(None, name), path)
            else:
                self._send(404, b'{"errorCode": 404, "title": "Not Found"}')

        def _serve(self, fault: RdapFault | None, data: dict[str, Any] | None, path: str) -> None:
            if fault is RdapFault.SLOW:
                fake._stop.wait(fake.slow_seconds)
                fault = None
            if fault is RdapFault.NOT_FOUND or (fault is None and data is None):
                self._send(404, b'{"errorCode": 404, "title": "Not Found"}')
            elif fault is RdapFault.RATE_LIMITED:
                self._send(429, b'{"errorCode": 429, "title": "Too Many Requests"}')
            elif fault is RdapFault.SERVER_ERROR:
                self._send(500, b"Internal Server Error", "text/plain")
            elif fault is RdapFault.INVALID_JSON:
                self._send(200, b'{"objectClassName": "domain", "ldhName": ')
            elif fault is RdapFault.NOT_A_DOMAIN:
                self._send(200, b'{"objectClassName": "entity", "handle": "X"}')
            elif fault is RdapFault.REDIRECT:
                self._redirect(f"/redirected/{path.rsplit('/', 1)[-1]}")
            elif fault is RdapFault.REDIRECT_ELSEWHERE:
                self._redirect(f"http://localhost:{fake.port}/redirected/{path.rsplit('/', 1)[-1]}")
            elif fault is RdapFault.REDIRECT_LOOP:
                self._redirect(path)
            elif fault is RdapFault.REDIRECT_TO:
                self._redirect(fake.locations[path.rsplit("/", 1)[-1].lower()])
            elif fault is RdapFault.HUGE:
                self._send(200, b" " * HUGE_SIZE)
            elif fault is RdapFault.HUGE_STREAM:
                self._stream(b" " * HUGE_SIZE)
            else:
                self._send(200, json.dumps(data).encode())

        def _send(self, status: int, body: bytes, ctype: str = "application/rdap+json") -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (timeout or size cap): expected in fault tests

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _stream(self, body: bytes) -> None:
            self.close_connection = True
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/rdap+json")
                self.send_header("Connection", "close")
                self.end_headers()
                for i in range(0, len(body), 65536):
                    self.wfile.write(body[i : i + 65536])
            except OSError:
                pass

    return Handler
