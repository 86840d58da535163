"""A real TCP WHOIS server on 127.0.0.1 answering from fixture texts, with faults per query.

A query without a dot is answered like ``whois.iana.org`` answers a TLD (template: the real
IANA answer for ``com``), naming ``referrals[tld]`` in its ``refer:`` line. Unknown domains get
Verisign's "No match for" answer::

    with FakeWhoisServer() as registry:
        registry.add("google.de", FIXTURES / "whois/raw/google.de")
        registry.set_fault("example.de", WhoisFault.SILENT)
        settings = Settings(whois_server=registry.address, allow_private_targets=True)
"""

from __future__ import annotations

import contextlib
import re
import socketserver
import threading
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "registry"
IANA_TEMPLATE = FIXTURES / "whois" / "iana" / "com"
HUGE_SIZE = 300 * 1024  # above the probe's 256 KiB cap


class WhoisFault(StrEnum):
    EMPTY = "empty"  # closes without a byte
    NO_MATCH = "no_match"  # Verisign's "No match for"
    SILENT = "silent"  # keeps the connection open without answering
    HUGE = "huge"  # 300 KiB of text


class FakeWhoisServer:
    def __init__(
        self,
        answers: Mapping[str, str | Path] | None = None,
        *,
        referrals: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.answers: dict[str, bytes] = {}
        for query, answer in (answers or {}).items():
            self.add(query, answer)
        self.referrals: dict[str, str] = dict(referrals or {})
        self.faults: dict[str, WhoisFault] = {}
        self.queries: list[str] = []
        self._stop = threading.Event()
        self._server = _QuietServer((host, 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeWhoisServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def add(self, query: str, answer: str | Path) -> None:
        """Answer ``query`` (a domain, matched case-insensitively) with a text or a file's bytes."""
        body = answer.read_bytes() if isinstance(answer, Path) else answer.encode("utf-8")
        self.answers[query.lower()] = body

    def set_fault(self, query: str, fault: WhoisFault) -> None:
        self.faults[query.lower()] = fault

    def answer_for(self, query: str) -> bytes:
        if query in self.answers:
            return self.answers[query]
        if "." not in query:
            return iana_answer(query, self.referrals.get(query)).encode()
        return no_match(query).encode()


def no_match(query: str) -> str:
    return (
        f'No match for "{query.upper()}".\r\n>>> Last update of whois database: 2024-07-29 <<<\r\n'
    )


def iana_answer(tld: str, refer: str | None) -> str:
    """The real IANA answer for ``com`` turned into one for ``tld`` referring to ``refer``."""
    text = IANA_TEMPLATE.read_text(encoding="utf-8")
    text = re.sub(r"^domain:\s+COM$", f"domain:       {tld.upper()}", text, flags=re.M)
    if refer is None:
        return re.sub(r"^whois:.*\n", "", text, flags=re.M)
    text = re.sub(r"^whois:.*$", f"whois:        {refer}", text, flags=re.M)
    return text.replace(
        "% This query returned 1 object\n",
        f"% This query returned 1 object\n\nrefer:        {refer}\n",
        1,
    )


class _QuietServer(socketserver.ThreadingTCPServer):
    """Handler threads are joined on close, so no thread outlives the fake."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-answer is what the fault tests do


def _handler(fake: FakeWhoisServer) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        timeout = 5  # a client that never sends its query cannot hold close() for longer

        def handle(self) -> None:
            query = self.rfile.readline(1024).decode("ascii", "replace").strip().lower()
            fake.queries.append(query)
            fault = fake.faults.get(query)
            if fault is WhoisFault.EMPTY:
                return
            if fault is WhoisFault.SILENT:
                fake._stop.wait(10)
                return
            if fault is WhoisFault.HUGE:
                body = b"% filler\r\n" * (HUGE_SIZE // 10 + 1)
            elif fault is WhoisFault.NO_MATCH:
                body = no_match(query).encode()
            else:
                body = fake.answer_for(query)
            with contextlib.suppress(OSError):  # the client gave up (size cap) in fault tests
                self.wfile.write(body)

    return Handler
