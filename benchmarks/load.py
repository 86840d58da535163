"""f. Load: a real ``dstrack serve`` (uvicorn) process under concurrent clients.

The benchmark starts ``dstrack serve`` on its own database (1,000 devices with organization,
product and SSL details; every tenth a Domain with domain details; five Activity notes each)
and local TLS and DNS servers, so forced updates do a real audit over loopback. Two
measurements, on SQLite and on PostgreSQL:

* **Stalls** (one worker: the event loop of one process is what is measured): the latency of a
  trivial query, ``{ me { name } }``, one request at a time - first alone (the same-run
  baseline), then while one client forces updates of 100 devices in a loop and another asks
  for a heavy page (100 devices with organization, product, SSL and domain details and
  activity) in a loop. What the trivial query waits for beyond its baseline is time the
  event loop spent elsewhere: in synchronous database calls or CPU work of the other requests.
* **Load**: ``--clients`` clients (50) each page through the devices 100 at a time with
  organization, product and SSL details, one request after the other, for a fixed time: p50,
  p95 and p99 latency, requests/s and errors; with one worker and with a worker per core. The
  same-run baseline is one client alone. Target: p99 <= 500 ms with 0 errors.

Client and server share the machine: the client's CPU share is printed with the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from benchmarks import graphql
from benchmarks.common import (
    DEVICES,
    SSL_DETAILS,
    Database,
    Result,
    backends,
    cpu_seconds,
    database_for,
    heading,
    process_cpu_seconds,
    say,
)
from benchmarks.servers import LocalServers, bench_chain, device_host, local_servers
from models import ActivityNote, DomainDetailsRecord, User
from models.db import transaction
from tracking.core import clock
from tracking.core.ids import encode_id
from tracking.manage import access

TARGET_P99_S = 0.5
TOKEN = "benchmark-admin-token"
FORCE_BATCH = 100
FORCE_USERS = 40  # forced updates are limited to 500 devices per user per 10 minutes
NOTES_PER_DEVICE = 5
DOMAIN_EVERY = 10

ME = "{ me { name } }"

PAGE = """
query($after: String) {
  devices(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id name category active expiresAt lastUpdatedAt
      organization { id name type }
      product { id name }
      sslDetails {
        commonName validFrom validUntil issuedBy organization serialNumber
        signatureAlgorithm subjectAlternativeNames fingerprintSha256 chainTrusted
        hostnameMatches retrievedAt
      }
    } }
  }
}"""

HEAVY_PAGE = """
query {
  devices(first: 100) {
    totalCount
    edges { node {
      id name category active expiresAt lastUpdatedAt
      organization { id name type }
      product { id name }
      sslSource { kind host port }
      sslDetails {
        commonName validFrom validUntil issuedBy organization organizationalUnit location
        serialNumber signatureAlgorithm subjectAlternativeNames fingerprintSha256
        chainLength chainTrusted chainTrustError hostnameMatches retrievedAt
      }
      domainDetails {
        registrar registrantOrganization createdAt updatedAt expiresAt nameServers statuses
        dnssec source registered registrationError dnsError retrievedAt
        dnsRecords { type name ttl value }
      }
      activity(first: 20) { id createdAt author text }
    } }
  }
}"""

FORCE_UPDATE = """
mutation($ids: [ID!]!) {
  forceUpdate(ids: $ids) { results { deviceId changed errors { code message } } }
}"""


# --- figures -----------------------------------------------------------------------------------


@dataclass
class Latencies:
    """Latencies of one kind of request during one phase, and what went wrong."""

    label: str
    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    def percentile(self, p: int) -> float:
        if len(self.times) < 2:
            return self.times[0] if self.times else float("nan")
        return statistics.quantiles(self.times, n=100, method="inclusive")[p - 1]

    @property
    def rate(self) -> float:
        return len(self.times) / self.wall if self.wall else 0.0

    def show(self, extra: str = "") -> None:
        say(
            f"  {self.label:<46} p50 {self.percentile(50) * 1000:7.1f} ms  "
            f"p95 {self.percentile(95) * 1000:7.1f}  p99 {self.percentile(99) * 1000:7.1f}  "
            f"max {max(self.times, default=0) * 1000:7.1f}  {self.rate:6.1f}/s  "
            f"({len(self.times)} requests, {len(self.errors)} errors){extra}"
        )
        for error in sorted(set(self.errors))[:3]:
            say(f"      error: {error[:160]}")


# --- the database ------------------------------------------------------------------------------


def populate(database: Database, tls_port: int) -> list[int]:
    """Benchmark c.'s 1,000 devices, served by the local TLS server, every tenth a Domain with
    domain details, five notes each; returns the SSL Certificate devices' keys."""
    graphql.populate(database)
    now = clock.now()
    domain_ids = list(range(DOMAIN_EVERY, graphql.DEVICE_COUNT + 1, DOMAIN_EVERY))
    ssl_ids = [i for i in range(1, graphql.DEVICE_COUNT + 1) if i % DOMAIN_EVERY]
    with database.engine.begin() as connection:
        connection.execute(
            DEVICES.update()
            .where(DEVICES.c.id == sa.bindparam("pk"))
            .values(ssl_host=sa.bindparam("host"), ssl_port=tls_port),
            [{"pk": pk, "host": device_host(pk)} for pk in ssl_ids],
        )
        connection.execute(SSL_DETAILS.delete().where(SSL_DETAILS.c.device_id.in_(domain_ids)))
        connection.execute(
            DEVICES.update()
            .where(DEVICES.c.id == sa.bindparam("pk"))
            .values(
                category="DOMAIN",
                ssl_source_kind=None,
                ssl_host=None,
                ssl_port=None,
                domain=sa.bindparam("domain"),
            ),
            [{"pk": pk, "domain": f"example{pk}.com"} for pk in domain_ids],
        )
        connection.execute(
            DomainDetailsRecord.__table__.insert(),  # type: ignore[attr-defined]
            [_domain_details(device_id, now) for device_id in domain_ids],
        )
        connection.execute(
            ActivityNote.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "device_id": device_id,
                    "created_at": now,
                    "author": "System",
                    "text": f"Certificate replaced (note {n}): the new one is valid until ...",
                }
                for device_id in range(1, graphql.DEVICE_COUNT + 1)
                for n in range(NOTES_PER_DEVICE)
            ],
        )
    return ssl_ids


def _domain_details(device_id: int, now: Any) -> dict[str, Any]:
    domain = f"example{device_id}.com"
    return {
        "device_id": device_id,
        "registrar": "Example Registrar, Inc.",
        "registrant_organization": "Example Customer",
        "created_at": now,
        "updated_at": now,
        "expires_at": now,
        "name_servers": [f"ns1.{domain}", f"ns2.{domain}"],
        "statuses": ["client transfer prohibited"],
        "dnssec": False,
        "source": "RDAP",
        "dns_records": [
            {"type": "A", "name": domain, "ttl": 300, "value": "192.0.2.1"},
            {"type": "MX", "name": domain, "ttl": 3600, "value": f"10 mail.{domain}."},
            {"type": "TXT", "name": domain, "ttl": 300, "value": '"v=spf1 -all"'},
        ],
        "registered": True,
        "registration_error": None,
        "dns_error": None,
        "retrieved_at": now,
    }


def force_update_tokens(database: Database) -> list[str]:
    """Administrators of their own for the forced updates, each with a token."""
    admin = access.ensure_admin_user(database.engine)
    tokens = []
    for number in range(FORCE_USERS):
        with transaction(database.engine) as session:
            user = User(
                name=f"bench-{number}",
                security_level_id=admin.security_level_id,
                created_at=clock.now(),
            )
            session.add(user)
            session.flush()
            assert user.id is not None
            user_id = user.id
        tokens.append(access.issue_token(database.engine, user_id=user_id))
    return tokens


# --- the server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def cpu_seconds(self) -> float:
        """CPU time of the server and of its worker processes."""
        total = 0.0
        for pid in (self.process.pid, *_children(self.process.pid)):
            with contextlib.suppress(OSError):
                total += process_cpu_seconds(pid)
        return total


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@contextlib.contextmanager
def serving(
    database: Database, servers: LocalServers, directory: Path, *, workers: int
) -> Iterator[Server]:
    """``dstrack serve --workers N`` as an operator starts it, configured by environment."""
    roots = directory / "roots.pem"
    roots.write_bytes(bench_chain().root.public_bytes(serialization.Encoding.PEM))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSTRACK_")}
    env.update(
        {
            "DSTRACK_DATABASE_URL": database.url,
            "DSTRACK_DATA_DIR": str(directory / "data"),
            "DSTRACK_ADMIN_TOKEN": TOKEN,
            "DSTRACK_DNS_NAMESERVERS": f"127.0.0.1:{servers.dns_port}",
            "DSTRACK_ALLOW_PRIVATE_TARGETS": "1",
            "DSTRACK_CA_BUNDLE": str(roots),
        }
    )
    port = _free_port()
    log = directory / f"serve-{port}.log"
    command = [str(Path(sys.executable).with_name("dstrack")), "serve", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)], env=env, stdout=output, stderr=output
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"dstrack serve ended:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"dstrack serve did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        while len(_children(process.pid)) < (workers if workers > 1 else 0):
            time.sleep(0.2)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- clients -----------------------------------------------------------------------------------


def _client(base: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        timeout=60,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def _post(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any], into: Latencies
) -> dict[str, Any] | None:
    start = time.perf_counter()
    try:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        body: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as error:
        into.times.append(time.perf_counter() - start)
        into.errors.append(f"{type(error).__name__}: {error}")
        return None
    into.times.append(time.perf_counter() - start)
    if response.status_code != 200 or "errors" in body:
        into.errors.append(f"HTTP {response.status_code}: {str(body.get('errors'))[:200]}")
        return None
    return body


async def _until(deadline: float, step: Callable[[], Awaitable[None]]) -> None:
    while time.monotonic() < deadline:
        await step()


async def pager(client: httpx.AsyncClient, deadline: float, into: Latencies) -> None:
    """One client paging through every device, 100 at a time, again and again."""
    after: str | None = None

    async def page() -> None:
        nonlocal after
        body = await _post(client, TOKEN, PAGE, {"after": after}, into)
        info = body["data"]["devices"]["pageInfo"] if body else None
        after = info["endCursor"] if info and info["hasNextPage"] else None

    await _until(deadline, page)


async def run_clients(base: str, clients: int, seconds: float) -> tuple[Latencies, float]:
    """``clients`` pagers for ``seconds``; returns their latencies and this process's CPU."""
    measured = Latencies(f"{clients} client(s) paging 100 devices")
    async with _client(base, clients) as client:
        warm = Latencies("warm-up")
        await asyncio.gather(
            *(pager(client, time.monotonic() + min(2.0, seconds / 2), warm) for _ in range(clients))
        )
        cpu0, start = cpu_seconds(), time.monotonic()
        await asyncio.gather(*(pager(client, start + seconds, measured) for _ in range(clients)))
        measured.wall = time.monotonic() - start
    return measured, cpu_seconds() - cpu0


async def run_stalls(
    base: str, seconds: float, force_ids: list[int], tokens: list[str]
) -> tuple[Latencies, Latencies, Latencies, Latencies]:
    """The trivial query alone, then beside forced updates and heavy pages."""
    idle = Latencies("{ me { name } } alone")
    loaded = Latencies("{ me { name } } beside the two below")
    heavy = Latencies("heavy page (details, domain, activity)")
    forced = Latencies(f"forceUpdate of {FORCE_BATCH} devices")
    async with _client(base, 8) as client:
        for _ in range(20):  # warm-up
            await _post(client, TOKEN, ME, {}, Latencies("warm"))
            await _post(client, TOKEN, HEAVY_PAGE, {}, Latencies("warm"))
        start = time.monotonic()
        await _until(start + seconds / 2, lambda: _post_none(client, TOKEN, ME, {}, idle))
        idle.wall = time.monotonic() - start

        batches = [force_ids[i : i + FORCE_BATCH] for i in range(0, len(force_ids), FORCE_BATCH)]
        calls = 0

        async def force() -> None:
            nonlocal calls
            ids = [encode_id("Device", pk) for pk in batches[calls % len(batches)]]
            token = tokens[(calls // 5) % len(tokens)]  # 5 x 100 devices per user
            calls += 1
            body = await _post(client, token, FORCE_UPDATE, {"ids": ids}, forced)
            failed = [r["errors"] for r in (body["data"]["forceUpdate"]["results"] if body else [])]
            forced.errors.extend(str(e) for e in failed if e)

        start = time.monotonic()
        deadline = start + seconds
        await asyncio.gather(
            _until(deadline, lambda: _post_none(client, TOKEN, ME, {}, loaded)),
            _until(deadline, lambda: _post_none(client, TOKEN, HEAVY_PAGE, {}, heavy)),
            _until(deadline, force),
        )
        for latencies in (loaded, heavy, forced):
            latencies.wall = time.monotonic() - start
    return idle, loaded, heavy, forced


async def _post_none(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any], into: Latencies
) -> None:
    await _post(client, token, query, variables, into)


# --- the benchmark -----------------------------------------------------------------------------


def _stalls(
    label: str, database: Database, servers: LocalServers, tmp: Path, seconds: float, ids: list[int]
) -> list[Result]:
    tokens = force_update_tokens(database)
    with serving(database, servers, tmp, workers=1) as server:
        server_cpu0 = server.cpu_seconds()
        idle, loaded, heavy, forced = asyncio.run(run_stalls(server.base, seconds, ids, tokens))
        server_cpu = (server.cpu_seconds() - server_cpu0) / (idle.wall + loaded.wall)
    say(f"-- {label}, stalls (1 worker; server CPU {server_cpu:.0%} of a core):")
    for latencies in (idle, loaded, heavy, forced):
        latencies.show()
    ratio = loaded.percentile(99) / idle.percentile(99)
    errors = len(idle.errors) + len(loaded.errors) + len(heavy.errors) + len(forced.errors)
    return [
        Result(
            name=f"trivial query p99 beside forced updates and heavy pages / alone ({label})",
            ratio=ratio,
            target="measured (see benchmarks/RESULTS.md), 0 errors",
            passed=errors == 0,
            note=f"p99 {loaded.percentile(99) * 1000:.0f} ms vs {idle.percentile(99) * 1000:.1f} "
            f"ms alone; heavy page p50 {heavy.percentile(50) * 1000:.0f} ms; forceUpdate of "
            f"{FORCE_BATCH} p50 {forced.percentile(50) * 1000:.0f} ms; {errors} errors",
            figures={
                "idle_p99": idle.percentile(99),
                "loaded_p50": loaded.percentile(50),
                "loaded_p99": loaded.percentile(99),
                "heavy_p50": heavy.percentile(50),
                "force_p50": forced.percentile(50),
            },
        )
    ]


def _load(
    label: str, database: Database, servers: LocalServers, tmp: Path, seconds: float, clients: int
) -> list[Result]:
    results = []
    cores = os.cpu_count() or 1
    for workers in sorted({1, cores}):
        with serving(database, servers, tmp, workers=workers) as server:
            alone, _ = asyncio.run(run_clients(server.base, 1, seconds / 3))
            server_cpu0 = server.cpu_seconds()
            loaded, client_cpu = asyncio.run(run_clients(server.base, clients, seconds))
            server_cpu = (server.cpu_seconds() - server_cpu0) / loaded.wall
        per_request = server_cpu * loaded.wall / max(1, len(loaded.times))
        say(
            f"-- {label}, {workers} worker(s); server CPU {server_cpu:.0%} of a core "
            f"({per_request * 1000:.1f} ms a request), this client {client_cpu / loaded.wall:.0%}:"
        )
        alone.show()
        loaded.show()
        p99 = loaded.percentile(99)
        results.append(
            Result(
                name=f"{clients} clients x page of 100: p99 / 500 ms ({label}, {workers} workers)",
                ratio=p99 / TARGET_P99_S,
                target="<= 1 (p99 <= 500 ms), 0 errors",
                passed=p99 <= TARGET_P99_S and not loaded.errors and not alone.errors,
                note=f"p50 {loaded.percentile(50) * 1000:.0f} ms, p95 "
                f"{loaded.percentile(95) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                f"{loaded.rate:.1f} requests/s, {len(loaded.errors)} errors, server CPU "
                f"{per_request * 1000:.1f} ms a request; one client alone: "
                f"p50 {alone.percentile(50) * 1000:.1f} ms, p95 {alone.percentile(95) * 1000:.1f} "
                "ms",
                figures={
                    "p50": loaded.percentile(50),
                    "p95": loaded.percentile(95),
                    "p99": p99,
                    "rate": loaded.rate,
                    "alone_p50": alone.percentile(50),
                    "alone_p95": alone.percentile(95),
                    "server_cpu_per_request": per_request,
                },
            )
        )
    return results


def run(*, quick: bool, postgres_url: str | None, clients: int = 50) -> list[Result]:
    heading(f"f. Load: dstrack serve under {clients} clients; a trivial query beside heavy work")
    seconds = 4.0 if quick else 15.0
    results: list[Result] = []
    with local_servers() as servers:
        for label, url in backends(postgres_url):
            with (
                tempfile.TemporaryDirectory(prefix="dstrack-bench-load-") as tmp,
                database_for(url, Path(tmp)) as database,
            ):
                ssl_ids = populate(database, servers.tls_port)
                results += _load(label, database, servers, Path(tmp), seconds, clients)
                results += _stalls(label, database, servers, Path(tmp), seconds, ssl_ids)
    return results


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv, postgres_url=None):
        say(result.line())
