"""Local TLS and DNS servers for the refresh benchmarks, in a process of their own.

The benchmark process is the client; the servers run in a subprocess (on uvloop when it is
installed) so that, on a 2-core machine, they have a core of their own and are not what
limits the measured rates. Their CPU time is read from /proc to show how busy they were.

* TLS on 127.0.0.1: every connection gets the same chain (a ``*.bench.test`` ECDSA leaf and
  its intermediate), whatever the SNI; the server only completes handshakes and waits for the
  client to hang up.
* DNS over UDP on 127.0.0.1: ``A`` of any name is 127.0.0.1, any other type is an empty
  NOERROR answer (as an authoritative server answers for a name without that type).

Run as ``python -m benchmarks.servers CHAIN_PEM KEY_PEM``; it prints ``READY <tls port> <dns
port>`` and serves until its standard input closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography import x509

from benchmarks.common import REPO, process_cpu_seconds

BENCH_DOMAIN = "bench.test"


def device_host(number: int) -> str:
    return f"d{number}.{BENCH_DOMAIN}"


# --- certificates (client side) -------------------------------------------------------------


@dataclass(frozen=True)
class BenchChain:
    chain_pem: str  # leaf then intermediate
    key_pem: bytes
    root: x509.Certificate


@cache
def bench_chain(
    *, crl_urls: tuple[str, ...] = (), ocsp_urls: tuple[str, ...] = (), serial: int | None = None
) -> BenchChain:
    """A wildcard ECDSA P-256 leaf for ``*.bench.test`` under the test CA (RSA intermediate and
    root, as most public chains): the host name matches and the chain is trusted. It names no
    CRL and no OCSP responder unless given (the revocation benchmark's leaves)."""
    from tests.fakes import pki  # test PKI, generated with cryptography (no network)

    ca = pki.test_ca("dstrack Benchmark")
    leaf = pki.issue(
        pki.name(f"*.{BENCH_DOMAIN}", o="dstrack Benchmark"),
        issuer=ca.intermediate,
        key_kind="ec256",
        dns_names=[f"*.{BENCH_DOMAIN}", BENCH_DOMAIN],
        days=365,
        crl_urls=crl_urls,
        ocsp_urls=ocsp_urls,
        serial=serial,
    )
    return BenchChain(
        chain_pem=leaf.pem + ca.intermediate.pem, key_pem=leaf.key_pem, root=ca.root.cert
    )


class ServerProcess:
    """A benchmark's server subprocess, ``python -m <module> CHAIN_FILE KEY_FILE``: it prints
    ``READY <port> <port>...`` once listening and stops when its stdin closes. A context
    manager giving the ports."""

    module = ""  # set by each kind

    def __init__(self, chain: BenchChain | None = None) -> None:
        self._chain = chain or bench_chain()
        self._tmp = tempfile.TemporaryDirectory(prefix="dstrack-bench-servers-")
        self._process: subprocess.Popen[str] | None = None
        self.ports: tuple[int, ...] = ()

    def __enter__(self) -> Self:
        chain_file = Path(self._tmp.name) / "chain.pem"
        key_file = Path(self._tmp.name) / "key.pem"
        chain_file.write_text(self._chain.chain_pem)
        key_file.write_bytes(self._chain.key_pem)
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module, str(chain_file), str(key_file)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        if not line or line[0] != "READY":
            self.close()
            raise RuntimeError(f"{self.module} did not start: {line}")
        self.ports = tuple(int(port) for port in line[1:])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        self._tmp.cleanup()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)


class LocalServers(ServerProcess):
    """The TLS (SNI) and DNS servers of this module, in their own process."""

    module = "benchmarks.servers"

    @property
    def tls_port(self) -> int:
        return self.ports[0]

    @property
    def dns_port(self) -> int:
        return self.ports[1]


@contextlib.contextmanager
def local_servers() -> Iterator[LocalServers]:
    with LocalServers() as servers:
        yield servers


# --- the server process ------------------------------------------------------------------------


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.read(4096):
            pass
    except (OSError, ssl.SSLError):
        pass
    finally:
        writer.transport.abort()


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        import dns.flags
        import dns.message
        import dns.rdatatype
        import dns.rrset

        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.question and query.question[0].rdtype == dns.rdatatype.A:
            name = query.question[0].name
            response.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "127.0.0.1"))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


async def _serve(chain_file: str, key_file: str) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: None)  # clients hang up mid-handshake
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file, key_file)
    context.num_tickets = 0  # the probe never resumes a session
    server = await asyncio.start_server(_handle, "127.0.0.1", 0, ssl=context, backlog=4096)
    dns_transport, _ = await loop.create_datagram_endpoint(
        _DnsProtocol, local_addr=("127.0.0.1", 0)
    )
    tls_port = server.sockets[0].getsockname()[1]
    dns_port = dns_transport.get_extra_info("sockname")[1]
    print(f"READY {tls_port} {dns_port}", flush=True)
    # Serve until the parent closes our standard input.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()
    dns_transport.close()


def main() -> None:
    logging.disable(logging.CRITICAL)
    chain_file, key_file = sys.argv[1], sys.argv[2]
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(chain_file, key_file))
    else:
        uvloop.run(_serve(chain_file, key_file))


if __name__ == "__main__":
    main()
