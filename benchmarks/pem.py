"""d. PEM decoding: SSL Details per second versus cryptography's bare PEM loading.

A set of varied certificates (RSA and ECDSA keys, 1 to 40 SANs, full subject names, some
issued by an intermediate, some self-signed) is decoded over and over in two ways, in short
alternating pairs:

* dstrack: ``ssl_details(load_pem_certificate(pem))`` - the PEM checks (exactly one
  CERTIFICATE block), parsing, and every SSL Details field (names, dates, serial, signature
  algorithm, SANs, SHA-256 fingerprint);
* bare: ``x509.load_pem_x509_certificate(pem)`` alone (which parses but reads no field).

The ratio is dstrack's rate over the bare rate. SSL Details read a dozen fields (cryptography
builds Python objects for every name attribute and SAN on first access) and hash the
certificate, so they cannot be as fast as a parse: the target, at most 10 times the cost of
the bare load, keeps decoding at a tenth of a TLS handshake's client CPU or less (benchmark
a), i.e. never what limits a refresh.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from cryptography import x509

from benchmarks.common import Result, heading, say
from tracking.core.certificates import load_pem_certificate
from tracking.core.ssl_details import ssl_details

TARGET = 0.1


def certificates() -> list[str]:
    from tests.fakes import pki  # test PKI, generated with cryptography (no network)

    ca = pki.test_ca("dstrack Benchmark")
    kinds: tuple[pki.KeyKind, ...] = ("rsa", "ec256", "ec384")
    pems = []
    for i in range(60):
        sans = [f"host{i}-{n}.example.com" for n in range(1 + (i * 7) % 40)]
        subject = pki.name(
            sans[0],
            o=f"Example Org {i}",
            ou="Operations" if i % 2 else None,
            l="Berlin",
            st="Berlin",
            c="DE",
        )
        kind = kinds[i % 3]
        issuer = None if i % 10 == 9 else ca.intermediate
        issued = pki.issue(
            subject, issuer=issuer, key_kind=kind, dns_names=sans, ip_addresses=["192.0.2.1"]
        )
        pems.append(issued.pem)
    return pems


def rate(decode: Callable[[], None], count: int, seconds: float) -> float:
    """Certificates per CPU second of this process: whole passes over the set for about
    ``seconds``. CPU time, not wall time: on a shared machine the time other processes take
    from this one is not decoding's cost (and it moved the ratio by 0.03 between runs)."""
    done = 0
    start = time.process_time()
    while True:
        decode()
        done += count
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return done / elapsed


def run(*, quick: bool) -> list[Result]:
    heading("d. PEM decoding: ssl_details(load_pem_certificate()) vs bare cryptography")
    pems = certificates()
    raw = [pem.encode("ascii") for pem in pems]

    def ours() -> None:
        for pem in pems:
            ssl_details(load_pem_certificate(pem))

    def bare() -> None:
        for data in raw:
            x509.load_pem_x509_certificate(data)

    ours()
    bare()  # warm
    # Short passes, paired: this machine's speed drifts by 20-30% within seconds, and the two
    # workloads do not drift alike, so each pair's ratio is taken and the median reported.
    seconds, pairs = (0.1, 10) if quick else (0.2, 25)
    bare_rates, our_rates = [], []
    for _ in range(pairs):
        bare_rates.append(rate(bare, len(pems), seconds))
        our_rates.append(rate(ours, len(pems), seconds))
    bare_rate, our_rate = statistics.median(bare_rates), statistics.median(our_rates)
    ratio = statistics.median(o / b for o, b in zip(our_rates, bare_rates, strict=True))
    say(
        f"{len(pems)} certificates: bare load {bare_rate:,.0f}/s, SSL Details {our_rate:,.0f}/s "
        f"({1e6 / our_rate:.0f} us each), ratio {ratio:.2f}"
    )
    return [
        Result(
            name="PEM decoding: SSL Details / bare load",
            ratio=ratio,
            target=f">= {TARGET:g}",
            passed=ratio >= TARGET,
            note=f"{our_rate:,.0f}/s vs {bare_rate:,.0f}/s",
            figures={"ours": our_rate, "bare": bare_rate},
        )
    ]
