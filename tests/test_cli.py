"""The ``dstrack`` command as an operator runs it: installed script, environment variables."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import os
import pty
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

import models  # noqa: F401  (registers every table on SQLModel.metadata)
from api import cli
from api.app import create_app
from models import OrganizationType, SecurityLevel
from models.db import create_engine
from tests.conftest import World
from tests.fakes import pki
from tracking.manage import access, inventory

DSTRACK = Path(sys.executable).with_name("dstrack")
ADMIN_TOKEN = "cli-admin-token-0123456789"
CREATE_ORGANIZATION = {
    "query": "mutation($name: String!) { createOrganization(input: {name: $name, type: VENDOR}) "
    "{ organization { id name type } errors { code } } }",
    "variables": {"name": "Over the wire"},
}


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The current environment without any DSTRACK_* setting, plus a database of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSTRACK_")}
    env["DSTRACK_DATABASE_URL"] = f"sqlite:///{tmp_path / 'db' / 'dstrack.sqlite3'}"
    env["DSTRACK_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


def _run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DSTRACK), *args],
        env=_environment(tmp_path, **extra),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return _environment(tmp_path)["DSTRACK_DATABASE_URL"]


def test_the_command_is_installed_and_lists_its_subcommands(tmp_path: Path) -> None:
    assert DSTRACK.exists()
    result = _run(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "migrate", "create-token"):
        assert command in result.stdout
    assert not (tmp_path / "db").exists()  # --help touches no database


def test_serve_help_shows_host_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(["serve", "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "--host" in out and "--port" in out


def test_without_a_subcommand_it_shows_usage_and_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main([])
    assert exit.value.code == 2
    assert "usage: dstrack" in capsys.readouterr().err


def test_migrate_creates_the_schema(tmp_path: Path, database_url: str) -> None:
    result = _run(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    engine = create_engine(database_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables >= set(SQLModel.metadata.tables) | {"alembic_version"}
    again = _run(tmp_path, "migrate")
    assert again.returncode == 0, again.stderr


def test_create_token_prints_a_working_admin_token_on_its_last_line(
    tmp_path: Path, database_url: str
) -> None:
    result = _run(tmp_path, "create-token")
    assert result.returncode == 0, result.stderr
    token = result.stdout.rstrip("\n").splitlines()[-1]
    assert token == token.strip() and " " not in token and len(token) >= 32

    engine = create_engine(database_url)
    try:
        viewer = access.authenticate(engine, token)
        assert viewer is not None
        assert viewer.name == access.ADMIN_USER_NAME
        assert viewer.is_admin
        assert access.authenticate(engine, token + "x") is None
    finally:
        engine.dispose()


def test_create_token_twice_gives_two_tokens_that_both_work(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in _environment(tmp_path).items():
        if key.startswith("DSTRACK_"):
            monkeypatch.setenv(key, value)
    tokens = []
    for _ in range(2):
        assert cli.main(["create-token"]) == 0
        tokens.append(capsys.readouterr().out.splitlines()[-1])
    assert tokens[0] != tokens[1]
    engine = create_engine(database_url)
    try:
        assert all(access.authenticate(engine, t) for t in tokens)
        assert cli.main(["revoke-tokens", "--user", access.ADMIN_USER_NAME]) == 0
        assert "revoked 2 token(s)" in capsys.readouterr().out
        assert not any(access.authenticate(engine, t) for t in tokens)
    finally:
        engine.dispose()


def test_create_token_for_an_unknown_user_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in _environment(tmp_path).items():
        if key.startswith("DSTRACK_"):
            monkeypatch.setenv(key, value)
    assert cli.main(["create-token", "--user", "nobody"]) == 1
    captured = capsys.readouterr()
    assert "nobody" in captured.err
    assert captured.out == ""


# The server, end to end --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _serving(
    tmp_path: Path, *args: str, token: str = ADMIN_TOKEN
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``dstrack serve ARGS`` on a free port, with its own database and admin token."""
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(DSTRACK), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=_environment(tmp_path, DSTRACK_ADMIN_TOKEN=token),
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield base, process, log
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    with _serving(tmp_path) as serving:
        yield serving


def _me(base: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{base}/graphql",
        json={"query": "{ me { name } }"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    # Uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -15).
    assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
    assert "Traceback" not in log.read_text()


def test_serve_migrates_answers_over_http_and_stops_cleanly(
    server: tuple[str, subprocess.Popen[bytes], Path], database_url: str
) -> None:
    base, process, log = server
    health = httpx.get(f"{base}/healthz", timeout=5)
    assert health.json() == {"status": "ok"}

    refused = httpx.post(f"{base}/graphql", json=CREATE_ORGANIZATION, timeout=5)
    assert refused.status_code == 401

    response = httpx.post(
        f"{base}/graphql",
        json=CREATE_ORGANIZATION,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["createOrganization"]
    assert payload["errors"] == []
    assert payload["organization"]["name"] == "Over the wire"

    listed = httpx.post(
        f"{base}/graphql",
        json={"query": "query { organizations { edges { node { id name type } } } }"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert listed.json()["data"]["organizations"]["edges"] == [{"node": payload["organization"]}]

    page = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}, timeout=5)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")

    process.send_signal(signal.SIGTERM)
    # Uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -15).
    assert process.wait(timeout=15) in (0, -signal.SIGTERM), log.read_text()
    output = log.read_text()
    assert "Application shutdown complete" in output
    assert "Traceback" not in output

    engine = create_engine(database_url)  # what was created over HTTP is in the database
    try:
        with engine.connect() as connection:
            names = connection.execute(sa.text("SELECT name FROM organizations")).scalars()
            assert list(names) == ["Over the wire"]
    finally:
        engine.dispose()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_serve_runs_the_workers_asked_for_and_stops_them_all(tmp_path: Path) -> None:
    with _serving(tmp_path, "--workers", "2") as (base, process, log):
        for _ in range(20):  # connections land on either worker; every one knows the token
            assert _me(base, ADMIN_TOKEN).json() == {"data": {"me": {"name": "admin"}}}
        workers = [
            pid
            for pid in _children(process.pid)
            if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
        ]
        assert len(workers) == 2, log.read_text()
        _stop(process, log)
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()
    assert log.read_text().count("Application startup complete") == 2


def test_serve_defaults_to_a_worker_per_core(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.build_parser().parse_args(["serve"]).workers == (os.cpu_count() or 1)
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    assert "--workers" in capsys.readouterr().out


def test_a_restart_with_another_admin_token_revokes_the_old_one(tmp_path: Path) -> None:
    new_token = "another-admin-token-0123456789"
    created = _run(tmp_path, "create-token").stdout.splitlines()[-1]
    with _serving(tmp_path) as (base, process, log):
        assert _me(base, ADMIN_TOKEN).status_code == 200
        _stop(process, log)
    with _serving(tmp_path, token=new_token) as (base, process, log):
        assert _me(base, new_token).json() == {"data": {"me": {"name": "admin"}}}
        assert _me(base, ADMIN_TOKEN).status_code == 401
        assert _me(base, created).status_code == 200  # made by hand: not the configured one
        _stop(process, log)


@pytest.mark.parametrize("token", ["short", "fifteen-chars-x"])
def test_serve_refuses_a_short_admin_token(tmp_path: Path, token: str) -> None:
    result = _run(tmp_path, "serve", "--port", str(_free_port()), DSTRACK_ADMIN_TOKEN=token)
    assert result.returncode != 0
    assert "DSTRACK_ADMIN_TOKEN" in result.stderr and "at least 16" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert token not in result.stderr  # the secret is not echoed
    assert not (tmp_path / "db").exists()  # refused before touching the database


def test_a_workers_start_up_objects_are_kept_out_of_the_collectors_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full collection walking everything the app holds (about 150,000 objects) paused the
    event loop for 60-90 ms every few seconds under load; ``dstrack serve`` freezes it."""
    for key, value in _environment(tmp_path, DSTRACK_ADMIN_TOKEN=ADMIN_TOKEN).items():
        if key.startswith("DSTRACK_"):
            monkeypatch.setenv(key, value)
    assert cli.main(["migrate"]) == 0
    gc.unfreeze()
    try:
        app = cli.worker_app()
        assert gc.get_freeze_count() > 10_000
        assert app.state.services.engine.url.database.endswith("dstrack.sqlite3")
        app.state.services.engine.dispose()
    finally:
        gc.unfreeze()


def test_serve_refuses_fewer_than_one_worker(tmp_path: Path) -> None:
    result = _run(tmp_path, "serve", "--workers", "0")
    assert result.returncode != 0
    assert "--workers must be at least 1" in result.stderr
    assert not (tmp_path / "db").exists()


# Import and export --------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World) -> dict[str, str]:
    """The command's environment (in this process): its own database, the local world."""
    env = _environment(
        tmp_path,
        DSTRACK_DNS_NAMESERVERS=world.dns.nameservers_env,
        DSTRACK_ALLOW_PRIVATE_TARGETS="1",
        DSTRACK_PROBE_TIMEOUT_S="2",
        DSTRACK_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    for key, value in env.items():
        if key.startswith("DSTRACK_"):
            monkeypatch.setenv(key, value)
    assert cli.main(["migrate"]) == 0
    return env


def _organizations(database_url: str, *orgs: tuple[str, str]) -> None:
    engine = create_engine(database_url)
    try:
        user = access.ensure_admin_user(engine)
        with Session(engine) as session:
            level = session.get(SecurityLevel, user.security_level_id)
        assert level is not None
        admin = access.viewer_for(user, level)
        for name, type in orgs:
            inventory.create_organization(
                engine, viewer=admin, name=name, type=OrganizationType(type)
            )
        if not access.user_named(engine, "tech"):
            tech = access.create_security_level(
                engine,
                viewer=admin,
                name="Customers only",
                crm_access=True,
                view_organization_types=[OrganizationType.CUSTOMER],
                can_add_devices=True,
                can_edit_devices=False,
                can_delete_devices=False,
            )
            access.create_user(engine, viewer=admin, name="tech", security_level_id=tech.id)
    finally:
        engine.dispose()


def _device_names(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return sorted(connection.execute(sa.text("SELECT name FROM devices")).scalars())
    finally:
        engine.dispose()


def _write(tmp_path: Path, text: str | bytes, name: str = "devices.csv") -> str:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return str(path)


def test_import_prints_the_row_errors_then_the_counts_and_a_second_run_skips(
    tmp_path: Path,
    cli_env: dict[str, str],
    world: World,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = cli_env["DSTRACK_DATABASE_URL"]
    _organizations(url, ("Acme", "CUSTOMER"))
    pem = pki.test_ca().leaf("pem.example").pem
    path = _write(
        tmp_path,
        "organization,category,source,name\r\n"
        f"Acme,SSL_CERTIFICATE,{world.host('good.test')},\r\n"
        f'Acme,SSL_CERTIFICATE,"{pem}",From a PEM\r\n'
        "Nobody,DOMAIN,*.example.com,\r\n"
        "Acme,SSL_CERTIFICATE,htps:\\\\datto.com,\r\n",
    )
    assert cli.main(["import", path]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "row 3: NOT_FOUND: Organization not found.",
        "row 4: HTTP_WEB_REQUEST_ERROR: Please double check your input and try again "
        "(HttpWebRequest error)",
        "created 2, skipped 0, failed 2",
    ]
    assert _device_names(url) == ["From a PEM", world.host("good.test")]

    assert cli.main(["import", path]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "created 0, skipped 2, failed 2"
    assert _device_names(url) == ["From a PEM", world.host("good.test")]


def test_import_dry_run_and_another_user(
    tmp_path: Path, cli_env: dict[str, str], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    url = cli_env["DSTRACK_DATABASE_URL"]
    _organizations(url, ("Acme", "CUSTOMER"), ("Supplier", "VENDOR"))
    path = _write(
        tmp_path,
        "organization,category,source\n"
        f"Acme,SSL_CERTIFICATE,{world.host('good.test')}\n"
        "Supplier,DOMAIN,*.supplier.example\n",
    )
    assert cli.main(["import", path, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("dry run: nothing was retrieved or created")
    assert out[-1] == "created 2, skipped 0, failed 0"
    assert _device_names(url) == []
    assert world.tls.connections == []

    assert cli.main(["import", path, "--user", "tech"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "row 2: NOT_FOUND: Organization not found.",
        "created 1, skipped 0, failed 1",
    ]
    assert cli.main(["import", path, "--user", "nobody"]) == 1
    assert "no user named 'nobody'" in capsys.readouterr().err


def test_import_refuses_bad_files_clearly(
    tmp_path: Path,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = cli_env["DSTRACK_DATABASE_URL"]
    _organizations(url, ("Acme", "CUSTOMER"))
    assert cli.main(["import", str(tmp_path / "missing.csv")]) == 1
    assert "missing.csv: No such file or directory" in capsys.readouterr().err

    empty = _write(tmp_path, "", "empty.csv")
    assert cli.main(["import", empty]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("file: INVALID_CSV: The file is empty")
    assert out[-1] == "created 0, skipped 0, failed 0"

    semicolons = _write(tmp_path, "organization;category;source\nAcme;DOMAIN;x.com\n", "semi.csv")
    assert cli.main(["import", semicolons]) == 1
    assert "this file seems to use ';'" in capsys.readouterr().out

    latin1 = _write(
        tmp_path,
        "organization,category,source,name\nAcme,DOMAIN,*.a.example,Café\n".encode("latin-1"),
        "latin1.csv",
    )
    assert cli.main(["import", latin1]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "row 1: INVALID_ENCODING: The row is not valid UTF-8 text: save the file as UTF-8 "
        "(in Excel: CSV UTF-8).",
        "created 0, skipped 0, failed 1",
    ]

    monkeypatch.setattr(cli, "MAX_IMPORT_FILE_BYTES", 1024 * 1024)
    big = _write(tmp_path, "organization,category,source\n" + "x" * 1024 * 1024, "big.csv")
    assert cli.main(["import", big]) == 1
    captured = capsys.readouterr()
    assert "big.csv is larger than 1 MiB: split it into several files" in captured.err
    assert _device_names(url) == []


def test_import_shows_a_progress_bar_on_a_terminal_only(
    tmp_path: Path, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = cli_env["DSTRACK_DATABASE_URL"]
    _organizations(url, ("Acme", "CUSTOMER"))
    rows = "".join(f"Acme,DOMAIN,*.d{i}.example\n" for i in range(30))
    path = _write(tmp_path, "organization,category,source\n" + rows)
    assert cli.main(["import", path, "--dry-run"]) == 0
    assert "importing" not in capsys.readouterr().out  # not a terminal: no bar

    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(DSTRACK), "import", path],
            env=cli_env,
            cwd=tmp_path,
            stdout=secondary,
            stderr=subprocess.DEVNULL,
        )
        os.close(secondary)
        output = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=60) == 0
    finally:
        os.close(primary)
    text = output.decode()
    assert "importing" in text and "30/30" in text
    assert text.rstrip().splitlines()[-1].endswith("created 30, skipped 0, failed 0")


async def _served_export() -> httpx.Response:
    """GET /export/devices.csv of an app over the environment's database."""
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://dstrack.test") as http:
        return await http.get(
            "/export/devices.csv", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )


def test_export_writes_what_the_http_route_streams(
    tmp_path: Path, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = cli_env["DSTRACK_DATABASE_URL"]
    _organizations(url, ("Acme", "CUSTOMER"), ("Supplier", "VENDOR"))
    pem = pki.test_ca().leaf("pem.example").pem
    path = _write(
        tmp_path,
        "organization,category,source,name\n"
        f'Acme,SSL_CERTIFICATE,"{pem}",=1+1\n'
        "Acme,DOMAIN,*.acme.example,\n"
        "Supplier,DOMAIN,*.supplier.example,\n",
    )
    assert cli.main(["import", path]) == 0
    capsys.readouterr()

    output = tmp_path / "out" / "export.csv"
    output.parent.mkdir()
    assert cli.main(["export", "--output", str(output)]) == 0
    assert capsys.readouterr().err.strip() == f"exported 3 device(s) to {output}"
    written = output.read_bytes().decode()
    assert not list(output.parent.glob("*.part"))

    served = asyncio.run(_served_export())
    assert served.status_code == 200
    assert served.text == written
    rows = list(csv.DictReader(io.StringIO(written, newline="")))
    assert [r["name"] for r in rows] == ["'=1+1", "*.acme.example", "*.supplier.example"]

    assert cli.main(["export", "--user", "tech", "--category", "DOMAIN"]) == 0
    shown = list(csv.DictReader(io.StringIO(capsys.readouterr().out, newline="")))
    assert [r["name"] for r in shown] == ["*.acme.example"]

    assert cli.main(["export", "--expiring-within-days", "soon"]) == 1
    assert "expiringWithinDays must be a whole number" in capsys.readouterr().err
