"""Several addresses for one name: TLS servers on 127.0.0.2, 127.0.0.3 and ::1 on one port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from cryptography.hazmat.primitives import hashes

from tests.conftest import World
from tests.fakes import pki
from tests.fakes.tls_server import FakeTlsServer, ServedCertificate, served

NAME = "multi.test"


def fingerprint(certificate: ServedCertificate) -> str:
    return certificate.leaf.cert.fingerprint(hashes.SHA256()).hex(":").upper()


def leaf(**kwargs: Any) -> ServedCertificate:
    ca = pki.test_ca()
    return served(ca.leaf(NAME, **kwargs), ca.intermediate)


def free_port() -> int:
    """A port free on 127.0.0.2, 127.0.0.3 and ::1 alike."""
    while True:
        with socket.create_server(("127.0.0.2", 0)) as probe:
            port = int(probe.getsockname()[1])
        try:
            for host, family in (("127.0.0.3", socket.AF_INET), ("::1", socket.AF_INET6)):
                socket.create_server((host, port), family=family).close()
        except OSError:
            continue
        return port


@contextmanager
def serving(world: World, certificates: dict[str, ServedCertificate | None]) -> Iterator[int]:
    """Each address (None: nothing listens there) on one port; ``multi.test`` resolves to all
    of them. Yields the port."""
    port = free_port()
    v4 = [a for a in certificates if ":" not in a]
    v6 = [a for a in certificates if ":" in a]
    world.dns.set_records(f"{NAME}.", "A", v4)
    world.dns.set_records(f"{NAME}.", "AAAA", v6)
    with ExitStack() as stack:
        for address, certificate in certificates.items():
            if certificate is not None:
                stack.enter_context(FakeTlsServer({}, certificate, host=address, port=port))
        yield port
