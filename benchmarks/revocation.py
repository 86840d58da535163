"""k. Revocation: a steady refresh of devices whose certificate names a CRL or an OCSP responder,
versus the same refresh of devices whose certificate names neither (benchmark a's leaf).

Three device sets of N host-sourced SSL devices each, on three local TLS servers (one leaf per
server, shared by its N devices): the plain ``*.bench.test`` leaf; the same with a CRL
Distribution Point (a 10 MiB CRL of the benchmark intermediate, served over HTTP in this
process); the same with an OCSP responder (a real ``openssl ocsp``). The first audit of each
set is timed (cold cache: it includes the one CRL or OCSP fetch), then steady passes alternate
and the medians are compared. The cache makes a refresh of N devices of one issuer one fetch:
the fetch count is printed and held to 1 per set.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from benchmarks.common import Result, heading, say, sqlite_database
from benchmarks.refresh import (
    CONCURRENCY,
    Phase,
    add_host_devices,
    bench_services,
    measure,
    refresh_all,
)
from benchmarks.servers import BenchChain, LocalServers, bench_chain
from tracking.probes.revocation import RevocationChecker
from tracking.refresh.services import Services

# A steady refresh with revocation costs at most 1/0.9 of the client CPU per device without
# (CPU, not wall time: on a shared machine the wall rates move by 20 % from round to round).
TARGET = 0.9
ROUNDS = 3
OCSP_SERIAL = 0xBE4C4


def run(*, quick: bool, postgres_url: str | None = None) -> list[Result]:
    del postgres_url  # the database is the same either way: SQLite
    heading("k. Revocation: steady refresh with a CRL or OCSP responder vs none")
    if shutil.which("openssl") is None:
        say("  the openssl command is not installed: skipped")
        return [Result("revocation", None, f">= {TARGET}", None, "no openssl")]
    from tests.fakes import pki
    from tests.fakes.crl import CRL_CONTENT_TYPE, large_crl
    from tests.fakes.http_receiver import HttpReceiver
    from tests.fakes.ocsp_responder import OcspResponder

    size = 200 if quick else 1000
    intermediate = pki.test_ca("dstrack Benchmark").intermediate
    indexed = pki.issue(pki.name("indexed"), issuer=intermediate, serial=OCSP_SERIAL)
    say(f"{size} devices per set, concurrency {CONCURRENCY}; a 10 MiB CRL; openssl ocsp")
    with (
        HttpReceiver() as crl_host,
        OcspResponder(intermediate, good=[indexed.cert]) as responder,
        tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp,
    ):
        crl_url = crl_host.serve_bytes("/bench.crl", large_crl(intermediate, {}), CRL_CONTENT_TYPE)
        chains = {
            "none": bench_chain(),
            "CRL": bench_chain(crl_urls=(crl_url,)),
            "OCSP": bench_chain(ocsp_urls=(responder.url,), serial=OCSP_SERIAL),
        }
        rates, fetches = _measure_sets(chains, Path(tmp), size)
        assert fetches["CRL"] == len(crl_host.requests)
    return _results(rates, fetches, size)


@dataclass(frozen=True)
class Steady:
    rate: float  # devices/s, median of the rounds
    cpu: float  # client CPU seconds per device, median of the rounds


def _measure_sets(
    chains: dict[str, BenchChain], tmp: Path, size: int
) -> tuple[dict[str, Steady], dict[str, int]]:
    with contextlib.ExitStack() as stack:
        sets: dict[str, tuple[LocalServers, Services, list[int]]] = {}
        for kind, chain in chains.items():  # a database, servers and services per set
            servers = stack.enter_context(LocalServers(chain))
            database = stack.enter_context(sqlite_database(tmp, name=kind))
            services = bench_services(database, servers, tmp / f"data-{kind}")
            sets[kind] = (servers, services, add_host_devices(database, servers.tls_port, size))

        def fetched(kind: str) -> int:
            checker = sets[kind][1].revocation
            assert isinstance(checker, RevocationChecker)
            return checker.fetches

        async def refresh(kind: str, label: str) -> Phase:
            servers, services, ids = sets[kind]
            work = partial(refresh_all, services, ids, CONCURRENCY)
            return await measure(f"{label}, {kind}", servers, size, work)

        async def rounds() -> dict[str, Steady]:
            for kind in sets:
                await refresh(kind, "first audit (cold cache)")
            steady: dict[str, list[Phase]] = {kind: [] for kind in sets}
            for _ in range(ROUNDS):
                for kind in sets:
                    steady[kind].append(await refresh(kind, "steady refresh"))
            return {
                kind: Steady(
                    statistics.median(p.rate for p in phases),
                    statistics.median(p.cpu_per_item for p in phases),
                )
                for kind, phases in steady.items()
            }

        rates = asyncio.run(rounds())
        return rates, {kind: fetched(kind) for kind in sets}


def _results(steady: dict[str, Steady], fetches: dict[str, int], size: int) -> list[Result]:
    say(
        "  steady "
        + ", ".join(
            f"{kind} {m.rate:.0f}/s ({m.cpu * 1000:.2f} ms CPU each)" for kind, m in steady.items()
        )
        + "; fetches over every pass: "
        + ", ".join(f"{kind} {count}" for kind, count in fetches.items())
    )
    results = []
    none = steady["none"]
    for kind in ("CRL", "OCSP"):
        cpu_ratio = none.cpu / steady[kind].cpu
        one_fetch = fetches[kind] == 1
        results.append(
            Result(
                name=f"steady refresh with {kind} / without, by CPU per device ({size} devices)",
                ratio=cpu_ratio,
                target=f">= {TARGET}, one fetch",
                passed=cpu_ratio >= TARGET and one_fetch,
                note=f"by wall rate {steady[kind].rate / none.rate:.2f}; "
                f"{fetches[kind]} fetch(es) over {1 + ROUNDS} passes",
                figures={
                    "rate": steady[kind].rate,
                    "none": none.rate,
                    "cpu": steady[kind].cpu,
                    "fetches": fetches[kind],
                },
            )
        )
    return results
