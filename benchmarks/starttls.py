"""l. STARTTLS throughput: certificates read through SMTP STARTTLS versus implicit TLS (SMTPS).

One aiosmtpd server (a process of its own, as the other benchmarks' servers) listens on two
ports of 127.0.0.1 with the same certificate: plain SMTP offering STARTTLS, and SMTPS. The
TLS probe (``tracking.probes.tls.RealTlsProbe``, what every refresh uses) fetches the chain
from each, ``smtp://`` (greeting, EHLO, STARTTLS, then the handshake) and ``smtps://`` (the
handshake at once), at the concurrency of a scheduled refresh run; the passes alternate and
the medians are compared. The ratio is what the three extra round trips and the server's
SMTP dialogue cost: target >= 0.7.

Run as ``python -m benchmarks.starttls CHAIN_PEM KEY_PEM`` it is the server: it prints
``READY <starttls port> <smtps port>`` and serves until its standard input closes.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import statistics
import sys
from collections.abc import Sequence

from benchmarks.common import Result, cpu_seconds, heading, say
from benchmarks.refresh import CONCURRENCY, gated
from benchmarks.servers import ServerProcess
from tracking.core.settings import Settings
from tracking.core.sources import HostSource
from tracking.probes.resolver import SystemResolver
from tracking.probes.tls import RealTlsProbe

TARGET = 0.7
ROUNDS = 5


class SmtpServers(ServerProcess):
    """The aiosmtpd process: plain SMTP offering STARTTLS, and SMTPS."""

    module = "benchmarks.starttls"

    @property
    def starttls_port(self) -> int:
        return self.ports[0]

    @property
    def smtps_port(self) -> int:
        return self.ports[1]


async def _pass(probe: RealTlsProbe, sources: Sequence[HostSource]) -> tuple[float, float]:
    """Rate (per second) and client CPU per certificate of one pass."""
    loop = asyncio.get_running_loop()
    cpu0, start = cpu_seconds(), loop.time()
    await gated(CONCURRENCY, sources, lambda s: probe.fetch_chain(s))  # type: ignore[arg-type]
    wall = loop.time() - start
    return len(sources) / wall, (cpu_seconds() - cpu0) / len(sources)


async def _rounds(servers: SmtpServers, size: int) -> dict[str, list[tuple[float, float]]]:
    settings = Settings(allow_private_targets=True, probe_timeout_s=30.0)
    probe = RealTlsProbe(settings, SystemResolver(30.0))
    sources = {
        "smtps": [HostSource("127.0.0.1", servers.smtps_port, "smtps")] * size,
        "smtp": [HostSource("127.0.0.1", servers.starttls_port, "smtp")] * size,
    }
    for kind in sources:  # warm-up
        await _pass(probe, sources[kind][:100])
    passes: dict[str, list[tuple[float, float]]] = {kind: [] for kind in sources}
    labels = {"smtps": "smtps:// (implicit TLS)", "smtp": "smtp:// (EHLO, STARTTLS)"}
    for _ in range(ROUNDS):
        for kind, items in sources.items():
            server0 = servers.cpu_seconds()
            rate, cpu = await _pass(probe, items)
            server_cpu = (servers.cpu_seconds() - server0) / len(items)
            passes[kind].append((rate, cpu))
            say(
                f"  {labels[kind]:<28} {rate:6.0f}/s  (client CPU {cpu * 1000:.2f} ms, "
                f"server CPU {server_cpu * 1000:.2f} ms each)"
            )
    return passes


def run(*, quick: bool, postgres_url: str | None = None) -> list[Result]:
    del postgres_url  # no database here
    heading("l. STARTTLS throughput: smtp:// vs smtps:// to the same aiosmtpd")
    size = 200 if quick else 1000
    say(f"{size} certificates per pass, concurrency {CONCURRENCY}, {ROUNDS} rounds")
    with SmtpServers() as servers:
        passes = asyncio.run(_rounds(servers, size))
    implicit = statistics.median(rate for rate, _ in passes["smtps"])
    starttls = statistics.median(rate for rate, _ in passes["smtp"])
    cpu_ratio = statistics.median(c for _, c in passes["smtps"]) / statistics.median(
        c for _, c in passes["smtp"]
    )
    ratio = starttls / implicit
    say(f"  implicit {implicit:.0f}/s, STARTTLS {starttls:.0f}/s; by client CPU {cpu_ratio:.2f}")
    return [
        Result(
            name=f"STARTTLS SMTP / implicit TLS ({size} certificates)",
            ratio=ratio,
            target=f">= {TARGET}",
            passed=ratio >= TARGET,
            note=f"by client CPU per certificate {cpu_ratio:.2f}",
            figures={"implicit": implicit, "starttls": starttls, "cpu": cpu_ratio},
        )
    ]


# --- the server process ------------------------------------------------------------------------


class _Sink:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


async def _serve(chain_file: str, key_file: str) -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: None)  # clients hang up after the handshake
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file, key_file)
    context.num_tickets = 0  # the probe never resumes a session

    def smtp(**kwargs: object) -> SMTP:
        return SMTP(_Sink(), hostname="smtp.bench.test", **kwargs)  # type: ignore[arg-type]

    starttls = await loop.create_server(
        lambda: smtp(tls_context=context), "127.0.0.1", 0, backlog=4096
    )
    smtps = await loop.create_server(smtp, "127.0.0.1", 0, ssl=context, backlog=4096)
    ports = [s.sockets[0].getsockname()[1] for s in (starttls, smtps)]
    print(f"READY {ports[0]} {ports[1]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    starttls.close()
    smtps.close()


def main() -> None:
    logging.disable(logging.CRITICAL)
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    main()
