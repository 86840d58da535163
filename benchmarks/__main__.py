"""``python -m benchmarks [--quick] [--only a,b] [--postgres-url URL | --no-postgres] [--strict]``.

a refresh throughput, b due-device selection, c GraphQL page, d PEM decoding, e flat memory,
f the API under load (``--clients N``: concurrent clients, 50 by default),
g CSV import, h CSV export, i expiry sweep, j GET /metrics, k revocation (CRL / OCSP) in a refresh,
l STARTTLS throughput.
Without ``--postgres-url`` (or ``DSTRACK_BENCH_POSTGRES_URL``), the throwaway server of
``scripts/postgres-for-tests`` is started for the PostgreSQL measurements.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from benchmarks.common import Result, heading, say, start_postgres

NAMES = {
    "a": "refresh throughput",
    "b": "due-device selection",
    "c": "GraphQL page",
    "d": "PEM decoding",
    "e": "flat memory",
    "f": "API under load",
    "g": "CSV import",
    "h": "CSV export",
    "i": "expiry sweep",
    "j": "metrics exposition",
    "k": "revocation in a refresh",
    "l": "STARTTLS throughput",
}


def _runner(key: str) -> Callable[..., list[Result]]:
    if key == "a":
        from benchmarks import refresh

        return refresh.run
    if key == "b":
        from benchmarks import selection

        return selection.run
    if key == "c":
        from benchmarks import graphql

        return graphql.run
    if key == "d":
        from benchmarks import pem

        return pem.run
    if key == "f":
        from benchmarks import load

        return load.run
    if key == "g":
        from benchmarks import imports

        return imports.run
    if key == "h":
        from benchmarks import exports

        return exports.run
    if key == "i":
        from benchmarks import sweep

        return sweep.run
    if key == "j":
        from benchmarks import metrics

        return metrics.run
    if key == "k":
        from benchmarks import revocation

        return revocation.run
    if key == "l":
        from benchmarks import starttls

        return starttls.run
    from benchmarks import memory

    return memory.run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--only",
        default=",".join(NAMES),
        help="comma-separated benchmarks to run: "
        + ", ".join(f"{k} {v}" for k, v in NAMES.items()),
    )
    parser.add_argument("--postgres-url", default=os.environ.get("DSTRACK_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--profile", action="store_true", help="a, g: print a cProfile of a refresh / an import"
    )
    parser.add_argument(
        "--clients", type=int, default=50, help="f: concurrent clients (default 50)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with 1 when a result is below its target"
    )
    args = parser.parse_args(argv)
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in args.only if k not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    postgres_url = None
    if not args.no_postgres and set(args.only) & {"a", "b", "c", "f", "g", "h", "i", "j"}:
        postgres_url = args.postgres_url or start_postgres()
    started = time.perf_counter()
    results: list[Result] = []
    for key in args.only:
        kwargs: dict[str, object] = {"quick": args.quick, "postgres_url": postgres_url}
        if key in ("a", "g"):
            kwargs["profile"] = args.profile
        if key in ("d", "e"):
            kwargs.pop("postgres_url")
        if key == "f":
            kwargs["clients"] = args.clients
        for result in _runner(key)(**kwargs):
            say(result.line())
            results.append(result)
    heading(f"Summary ({time.perf_counter() - started:.0f} s{', quick' if args.quick else ''})")
    for result in results:
        say(result.line())
    below = [r for r in results if r.passed is False]
    return 1 if args.strict and below else 0


if __name__ == "__main__":
    sys.exit(main())
