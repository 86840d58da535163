"""``make run`` in a terminal: Ctrl-C (or SIGTERM to make) stops every process it started.

The API, ``dagster dev`` and Dagster's webserver, daemon and code servers run from a copy of
the repository, with this test's virtual environment (``VENV``), on free ports, under a
pseudo-terminal whose Ctrl-C the terminal driver turns into SIGINT for the foreground process
group, as in a real terminal. Every process started carries a marker in its environment, so
one that left the session or process group is found as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
MARKER = "DSTRACK_MAKE_RUN_TEST"
STOP_WITHIN_S = 15
START_WITHIN_S = 150

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _marked(marker: str) -> dict[int, str]:
    """The processes whose environment holds ``marker``, with their command lines."""
    found = {}
    needle = f"{MARKER}={marker}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found[int(entry.name)] = command
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def _copy_of_the_repository(target: Path) -> Path:
    """What a clone holds (no virtual environment, no ``var``)."""
    shutil.copytree(
        REPO,
        target,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "venv", "var", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    # The Makefile's install stamp names the content of these two files; old modification
    # times keep make from taking the copies for edits made after that install (it would
    # install the copy into VENV in editable mode: this test's own environment).
    for name in ("pyproject.toml", "requirements.lock"):
        os.utime(target / name, (0, 0))
    planned = subprocess.run(
        ["make", "-n", "run"],
        cwd=target,
        env={**os.environ, "VENV": str(VENV)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "pip install" in planned:
        pytest.skip(f"{VENV} is not up to date: make run would install into it (make install)")
    return target


@dataclass
class Terminal:
    """``make run`` as the session leader of a pseudo-terminal; its output is collected."""

    process: subprocess.Popen[bytes]
    master: int
    output: bytearray = field(default_factory=bytearray)

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def read_continuously(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the session's last process closed the terminal
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")  # the terminal driver sends SIGINT to the foreground


def _take_terminal(*, sigint: signal.Handlers = signal.SIG_DFL) -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # As a person's shell starts it, unless a test asks otherwise: a test run started in the
    # background (a CI job, `&`) ignores SIGINT and SIGQUIT, and make and bash would inherit
    # that (signals ignored on entry cannot be trapped), so Ctrl-C would reach nobody.
    for number in (signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, sigint)


@contextlib.contextmanager
def make_run(
    tmp_path: Path, *, sigint: signal.Handlers = signal.SIG_DFL
) -> Iterator[tuple[Terminal, int, int, str]]:
    clone = _copy_of_the_repository(tmp_path / "clone")
    api_port, dagster_port = _free_port(), _free_port()
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSTRACK_", "DAGSTER_"))}
    env.update(
        {
            MARKER: marker,
            "VENV": str(VENV),
            "DSTRACK_PORT": str(api_port),
            "DAGSTER_PORT": str(dagster_port),
            "TERM": "dumb",
        }
    )
    env.pop("MAKEFLAGS", None)
    master, slave = os.openpty()
    process = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        # The pseudo-terminal becomes the controlling terminal.
        preexec_fn=functools.partial(_take_terminal, sigint=sigint),
    )
    os.close(slave)
    terminal = Terminal(process, master)
    reader = threading.Thread(target=terminal.read_continuously, daemon=True)
    reader.start()
    try:
        yield terminal, api_port, dagster_port, marker
    finally:
        for pid in _marked(marker):  # whatever this test started and is still there
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        os.close(master)
        reader.join(timeout=5)


def _wait_until_started(terminal: Terminal, api_port: int, dagster_port: int) -> None:
    """The API answers and Dagster's UI lists the code location (its code server is up)."""
    deadline = time.monotonic() + START_WITHIN_S
    while True:
        assert terminal.process.poll() is None, terminal.text()
        assert time.monotonic() < deadline, f"not started:\n{terminal.text()}"
        with contextlib.suppress(httpx.HTTPError):
            api = httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2)
            dagster = httpx.post(
                f"http://127.0.0.1:{dagster_port}/graphql",
                json={
                    "query": "{ workspaceOrError { ... on Workspace { locationEntries {"
                    " locationOrLoadError { __typename } } } } }"
                },
                timeout=5,
            )
            if api.status_code == 200 and '"RepositoryLocation"' in dagster.text:
                return
        time.sleep(1)


def _assert_everything_stops(
    terminal: Terminal, api_port: int, dagster_port: int, marker: str, started: dict[int, str]
) -> None:
    deadline = time.monotonic() + STOP_WITHIN_S
    while time.monotonic() < deadline:
        left = _marked(marker)
        if not left and terminal.process.poll() is not None:
            break
        time.sleep(0.25)
    left = _marked(marker)
    assert left == {}, (
        f"still running {STOP_WITHIN_S} s after the stop: {left}\n(of {started})\n"
        + terminal.text()
    )
    assert terminal.process.poll() is not None
    assert not _port_open(api_port)
    assert not _port_open(dagster_port)


def _running(terminal: Terminal, api_port: int, dagster_port: int, marker: str) -> dict[int, str]:
    _wait_until_started(terminal, api_port, dagster_port)
    started = _marked(marker)
    commands = " ".join(started.values())
    for part in ("dstrack serve", "dagster dev", "dagster_webserver", "dagster._daemon"):
        assert part in commands, started
    return started


def test_ctrl_c_stops_the_api_and_every_dagster_process(tmp_path: Path) -> None:
    with make_run(tmp_path) as (terminal, api_port, dagster_port, marker):
        started = _running(terminal, api_port, dagster_port, marker)
        terminal.ctrl_c()
        _assert_everything_stops(terminal, api_port, dagster_port, marker, started)
        output = terminal.text()
    assert "will not be used to configure Dagster" not in output  # the template is elsewhere
    assert "Traceback" not in output


def test_sigterm_to_make_stops_every_process(tmp_path: Path) -> None:
    with make_run(tmp_path) as (terminal, api_port, dagster_port, marker):
        started = _running(terminal, api_port, dagster_port, marker)
        terminal.process.send_signal(signal.SIGTERM)
        _assert_everything_stops(terminal, api_port, dagster_port, marker, started)


def test_started_in_the_background_sigterm_still_stops_every_service_gracefully(
    tmp_path: Path,
) -> None:
    """`make run &` in a script: SIGINT is ignored from the start, yet each service gets the
    SIGINT of a graceful stop (none needs killing)."""
    with make_run(tmp_path, sigint=signal.SIG_IGN) as (terminal, api_port, dagster_port, marker):
        started = _running(terminal, api_port, dagster_port, marker)
        terminal.process.send_signal(signal.SIGTERM)
        _assert_everything_stops(terminal, api_port, dagster_port, marker, started)
        output = terminal.text()
    assert "killing what is left" not in output
    assert "Shutting down Dagster services" in output


def test_a_short_admin_token_stops_make_run_before_anything_starts(tmp_path: Path) -> None:
    clone = _copy_of_the_repository(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSTRACK_", "DAGSTER_"))}
    env.update({"VENV": str(VENV), "DSTRACK_ADMIN_TOKEN": "too-short"})
    env.pop("MAKEFLAGS", None)
    result = subprocess.run(
        ["make", "run"], cwd=clone, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DSTRACK_ADMIN_TOKEN" in result.stderr and "at least 16" in result.stderr
    assert "too-short" not in result.stdout + result.stderr
    assert not (clone / "var" / "dstrack.sqlite3").exists()
