"""A real Dovecot (Debian's dovecot-imapd and dovecot-pop3d) on 127.0.0.1 for tests.

One ``dovecot -F`` process with its own configuration, run and state directories, listening
for IMAP (STARTTLS), IMAPS, POP3 (STLS) and POP3S on four free ports, with a certificate from
:mod:`tests.fakes.pki` (``mail.test`` and its intermediate). Any user logs in with
``password`` (a static passdb); plain-text login is refused before TLS, as Debian ships it::

    with DovecotServer() as dovecot:
        imaplib.IMAP4("127.0.0.1", dovecot.imap_port).starttls(...)

Dovecot must run as root (it drops to its ``dovecot``/``dovenull`` users). The fixture
``dovecot_server`` skips when Dovecot is not installed or the tests do not run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from tests.fakes.starttls_servers import certificate_for
from tests.fakes.tls_server import HOST, ServedCertificate

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
HOST_NAME = "mail.test"
LISTENERS = ("imap", "imaps", "pop3", "pop3s")


def dovecot_unavailable() -> str | None:
    """Why Dovecot cannot run here, or None."""
    if DOVECOT is None:
        return "Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)"
    if os.geteuid() != 0:
        return "Dovecot needs root to start"
    return None


class DovecotServer:
    """See the module docstring."""

    def __init__(
        self, *, certificate: ServedCertificate | None = None, password: str = "s3cret"
    ) -> None:
        self.certificate = certificate or certificate_for(HOST_NAME)
        self.password = password
        self.host = HOST
        self.ports: dict[str, int] = {}
        self._tmp: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def imap_port(self) -> int:
        return self.ports["imap"]

    @property
    def imaps_port(self) -> int:
        return self.ports["imaps"]

    @property
    def pop3_port(self) -> int:
        return self.ports["pop3"]

    @property
    def pop3s_port(self) -> int:
        return self.ports["pop3s"]

    def start(self, attempts: int = 3, timeout: float = 10.0) -> Self:
        reason = dovecot_unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        self._tmp = Path(tempfile.mkdtemp(prefix="dstrack-dovecot-"))
        self._tmp.chmod(0o755)  # its unprivileged processes look inside
        (self._tmp / "home").mkdir(mode=0o1777)
        (self._tmp / "home").chmod(0o1777)  # mail of any user, as ``nobody``
        (self._tmp / "server.crt").write_text(self.certificate.chain_pem)
        (self._tmp / "server.key").write_bytes(self.certificate.key_pem)
        (self._tmp / "server.key").chmod(0o600)
        try:
            for _ in range(attempts):
                if self._start_once(timeout):
                    return self
                self._stop_process()
            log = (self._tmp / "dovecot.log").read_text(errors="replace")
            raise RuntimeError(f"Dovecot did not start:\n{log}")
        except BaseException:
            self.close()
            raise

    def _start_once(self, timeout: float) -> bool:
        assert self._tmp is not None and DOVECOT is not None
        self.ports = {name: _free_port() for name in LISTENERS}
        config = self._tmp / "dovecot.conf"
        config.write_text(self._config())
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        waiting = set(self.ports.values())
        while waiting and time.monotonic() < deadline and self._process.poll() is None:
            for port in list(waiting):
                try:
                    socket.create_connection((HOST, port), timeout=0.5).close()
                    waiting.discard(port)
                except OSError:
                    time.sleep(0.05)
        return not waiting and self._process.poll() is None

    def _config(self) -> str:
        assert self._tmp is not None
        tmp = self._tmp
        listeners = {
            "imap-login": ("imap", "imaps"),
            "pop3-login": ("pop3", "pop3s"),
        }
        services = "".join(
            f"service {service} {{\n"
            + "".join(
                f"  inet_listener {name} {{\n    address = {HOST}\n"
                f"    port = {self.ports[name]}\n"
                + ("    ssl = yes\n" if name.endswith("s") else "")
                + "  }\n"
                for name in names
            )
            + "}\n"
            for service, names in listeners.items()
        )
        return (
            f"protocols = imap pop3\nlisten = {HOST}\n"
            f"base_dir = {tmp}/run\nstate_dir = {tmp}/state\n"
            f"instance_name = dstrack-test-{tmp.name}\nlog_path = {tmp}/dovecot.log\n"
            f"ssl = required\nssl_cert = <{tmp}/server.crt\nssl_key = <{tmp}/server.key\n"
            "auth_mechanisms = plain login\n"
            f"passdb {{\n  driver = static\n  args = password={self.password}\n}}\n"
            "userdb {\n  driver = static\n"
            f"  args = uid=nobody gid=nogroup home={tmp}/home/%u\n}}\n"
            f"mail_location = maildir:{tmp}/home/%u/Maildir\n" + services
        )

    def _stop_process(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def close(self) -> None:
        self._stop_process()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """One Dovecot for the session (skipped when it cannot run here)."""
    reason = dovecot_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with DovecotServer() as server:
        yield server
