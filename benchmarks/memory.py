"""e. Flat memory: refreshing 10,000 devices in batches does not grow the process.

10,000 host-sourced SSL devices are refreshed for the first time (details inserted, a RAW file
written, an Activity note, a job) in 50 batches of 200 through ``update_many`` at the
concurrency of a scheduled run, against the local TLS and DNS servers, in one process and one
event loop per batch - as a long-lived Dagster executor would. The resident set size is read
after each batch; what it grows between the end of the warm-up batches and the last batch is
held to ``BOUND_MB``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    Result,
    heading,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    say,
    sqlite_database,
)
from benchmarks.refresh import CONCURRENCY, add_host_devices, bench_services, refresh_all
from benchmarks.servers import local_servers

BATCH = 200
WARMUP_BATCHES = 5
BOUND_MB = 20.0


def run(*, quick: bool) -> list[Result]:
    batches = 15 if quick else 50
    heading(f"e. Flat memory: {batches * BATCH:,} devices refreshed in {batches} batches")
    with (
        local_servers() as servers,
        tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp,
        sqlite_database(Path(tmp)) as database,
    ):
        services = bench_services(database, servers, Path(tmp) / "data")
        ids = add_host_devices(database, servers.tls_port, batches * BATCH)
        reset_peak_rss()
        start_rss = rss_mb()
        after: list[float] = []
        started = time.perf_counter()
        for number in range(batches):
            batch = ids[number * BATCH : (number + 1) * BATCH]
            asyncio.run(refresh_all(services, batch, CONCURRENCY))
            after.append(rss_mb())
            done = number + 1
            if done in (1, WARMUP_BATCHES, batches // 2, batches) or done % 10 == 0:
                say(
                    f"  after batch {done:>2} ({done * BATCH:>6,} devices): RSS {after[-1]:6.1f} MB"
                )
        elapsed = time.perf_counter() - started
    warm = after[WARMUP_BATCHES - 1]
    growth = after[-1] - warm
    ratio = after[-1] / warm
    say(
        f"  RSS before the first batch {start_rss:.1f} MB, after warm-up ({WARMUP_BATCHES} "
        f"batches) {warm:.1f} MB, after the last {after[-1]:.1f} MB, peak {peak_rss_mb():.1f} MB; "
        f"growth over the last {batches - WARMUP_BATCHES} batches {growth:+.1f} MB "
        f"({batches * BATCH / elapsed:.0f} devices/s)"
    )
    return [
        Result(
            name=f"memory: RSS after batch {batches} / after batch {WARMUP_BATCHES}",
            ratio=ratio,
            target=f"growth < {BOUND_MB:g} MB",
            passed=growth < BOUND_MB,
            note=f"{growth:+.1f} MB ({warm:.0f} -> {after[-1]:.0f} MB), "
            f"{after[0] - start_rss:+.1f} MB in the first batch",
            figures={"growth_mb": growth, "warm_mb": warm, "last_mb": after[-1]},
        )
    ]
