"""Revocation over the network: a real ``openssl ocsp`` responder, broken responders, CRLs
served over HTTP, the private-address guard and the shared cache (``RevocationChecker``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.fakes import pki
from tests.fakes.clients import needs_openssl
from tests.fakes.crl import CRL_CONTENT_TYPE, crl_der, large_crl, make_crl
from tests.fakes.crl import Revocation as Revoked
from tests.fakes.http_receiver import Answer, HttpReceiver
from tests.fakes.ocsp_responder import (
    OCSP_RESPONSE_TYPE,
    OcspFault,
    OcspResponder,
    faulty_ocsp_responder,
    ocsp_response,
)
from tests.fakes.tls_server import ClosedPort
from tracking.core import clock
from tracking.core.revocation import Revocation, RevocationStatus
from tracking.core.settings import Settings
from tracking.probes.resolver import resolver_for
from tracking.probes.revocation import RevocationChecker

CA = pki.test_ca()
ISSUER = CA.intermediate
TIMEOUT = 1.0
SETTINGS = Settings(allow_private_targets=True, probe_timeout_s=TIMEOUT)
REVOCATION = Revoked(at=pki.NOW - dt.timedelta(days=3), reason=x509.ReasonFlags.superseded)
GOOD_SERIAL, REVOKED_SERIAL, UNKNOWN_SERIAL = 0x600D, 0xBAD, 0x404


def checker(settings: Settings = SETTINGS) -> RevocationChecker:
    return RevocationChecker(settings, resolver_for(settings))


async def check(leaf: pki.Issued, *, chain: bool = True, **kwargs: object) -> Revocation:
    certs = (leaf.cert, ISSUER.cert) if chain else (leaf.cert,)
    return await checker().check(certs, **kwargs)  # type: ignore[arg-type]


def with_serial(serial: int) -> x509.Certificate:
    """A certificate the responder's index lists (the one a test checks has the same serial
    and issuer, and the responder's URL, known only once it listens)."""
    return CA.leaf(f"s{serial:x}.test", serial=serial).cert


@pytest.fixture(scope="module")
def responder() -> Iterator[OcspResponder]:
    with OcspResponder(
        ISSUER,
        good=[with_serial(GOOD_SERIAL)],
        revoked={with_serial(REVOKED_SERIAL): REVOCATION},
    ) as running:
        yield running


@pytest.fixture
def crls() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def serve_crl(receiver: HttpReceiver, crl: bytes, path: str = "/int.crl") -> str:
    return receiver.serve_bytes(path, crl, CRL_CONTENT_TYPE)


# --- OCSP --------------------------------------------------------------------------------------


@needs_openssl
@pytest.mark.parametrize(
    ("serial", "status"),
    [
        (GOOD_SERIAL, RevocationStatus.GOOD),
        (REVOKED_SERIAL, RevocationStatus.REVOKED),
        (UNKNOWN_SERIAL, RevocationStatus.UNKNOWN),
    ],
)
async def test_the_openssl_responder_answers(
    responder: OcspResponder, serial: int, status: RevocationStatus
) -> None:
    leaf = CA.leaf("ocsp.test", serial=serial, ocsp_urls=[responder.url])
    before = clock.now()
    found = await check(leaf)
    assert found.status is status
    assert found.source == f"OCSP {responder.url}"
    assert found.checked_at is not None and found.checked_at >= before
    if status is RevocationStatus.REVOKED:
        assert (found.revoked_at, found.reason) == (REVOCATION.at, "superseded")
    else:
        assert (found.revoked_at, found.reason) == (None, None)


@needs_openssl
async def test_a_delegated_responder_is_believed() -> None:
    with OcspResponder(
        ISSUER, revoked={with_serial(REVOKED_SERIAL): REVOCATION}, signer=CA.ocsp_responder()
    ) as delegated:
        leaf = CA.leaf("delegated.test", serial=REVOKED_SERIAL, ocsp_urls=[delegated.url])
        assert (await check(leaf)).status is RevocationStatus.REVOKED


@needs_openssl
async def test_the_issuer_comes_from_ca_issuers_when_the_chain_lacks_it(
    responder: OcspResponder, crls: HttpReceiver
) -> None:
    der = ISSUER.cert.public_bytes(serialization.Encoding.DER)
    issuer_url = crls.serve_bytes("/int.der", der, "application/pkix-cert")
    leaf = CA.leaf(
        "aia.test", serial=GOOD_SERIAL, ocsp_urls=[responder.url], ca_issuers_urls=[issuer_url]
    )
    assert (await check(leaf, chain=False)).status is RevocationStatus.GOOD
    orphan = CA.leaf("orphan.test", serial=GOOD_SERIAL, ocsp_urls=[responder.url])
    found = await check(orphan, chain=False)
    assert found.status is RevocationStatus.UNAVAILABLE
    assert "issuer's certificate" in (found.detail or "")


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        (OcspFault.GARBAGE, "not an OCSP response"),
        (OcspFault.HUGE, "larger than 64 KiB"),
        (OcspFault.HTTP_ERROR, "HTTP status 500"),
        (OcspFault.NOT_HTTP, ""),
        (OcspFault.NEVER_ANSWERS, "timed out"),
        (OcspFault.TRY_LATER, "TRY_LATER"),
    ],
)
async def test_a_broken_responder_is_unavailable_never_good(fault: OcspFault, why: str) -> None:
    with faulty_ocsp_responder(fault) as broken:
        leaf = CA.leaf("broken.test", ocsp_urls=[broken.url + "/"])
        started = time.monotonic()
        found = await check(leaf)
    assert found.status is RevocationStatus.UNAVAILABLE
    assert found.checked_at is not None
    assert found.detail and found.detail.startswith(f"OCSP {broken.url}/: ")
    assert why in found.detail
    assert time.monotonic() - started < 3 * TIMEOUT + 2


async def test_an_unreachable_responder_is_unavailable() -> None:
    with ClosedPort() as closed:
        leaf = CA.leaf("closed.test", ocsp_urls=[f"http://127.0.0.1:{closed.port}/"])
        found = await check(leaf)
    assert found.status is RevocationStatus.UNAVAILABLE
    assert "cannot connect" in (found.detail or "")


async def test_an_answer_past_its_next_update_is_unavailable(crls: HttpReceiver) -> None:
    leaf_serial = 0x57A1E
    stale = ocsp_response(
        with_serial(leaf_serial),
        ISSUER,
        this_update=pki.NOW - dt.timedelta(days=3),
        next_update=pki.NOW - dt.timedelta(days=1),
    )
    url = crls.serve_bytes("/ocsp", stale, OCSP_RESPONSE_TYPE)
    found = await check(CA.leaf("stale.test", serial=leaf_serial, ocsp_urls=[url]))
    assert found.status is RevocationStatus.UNAVAILABLE
    assert "out of date" in (found.detail or "")


async def test_a_forged_answer_is_unavailable(crls: HttpReceiver) -> None:
    forged = ocsp_response(with_serial(0xF0), ISSUER, signer_key=pki.key("rsa", 9))
    url = crls.serve_bytes("/ocsp", forged, OCSP_RESPONSE_TYPE)
    found = await check(CA.leaf("forged.test", serial=0xF0, ocsp_urls=[url]))
    assert found.status is RevocationStatus.UNAVAILABLE
    assert "signature does not verify" in (found.detail or "")


# --- CRLs --------------------------------------------------------------------------------------


async def test_the_crl_answers_when_the_responder_does_not(crls: HttpReceiver) -> None:
    leaf_serial = 0xC0FFEE
    url = serve_crl(crls, crl_der(make_crl(ISSUER, {leaf_serial: REVOCATION})))
    with ClosedPort() as closed:
        responder = f"http://127.0.0.1:{closed.port}/"
        revoked = CA.leaf("r.test", serial=leaf_serial, ocsp_urls=[responder], crl_urls=[url])
        good = CA.leaf("g.test", ocsp_urls=[responder], crl_urls=[url])
        found, fine = await check(revoked), await check(good)
    assert (found.status, found.revoked_at, found.reason, found.source) == (
        RevocationStatus.REVOKED,
        REVOCATION.at,
        "superseded",
        f"CRL {url}",
    )
    assert fine.status is RevocationStatus.GOOD


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: crl_der(make_crl(ISSUER, {}, signer_key=pki.key("rsa", 9))), "signature"),
        (
            lambda: crl_der(
                make_crl(
                    ISSUER,
                    {},
                    this_update=pki.NOW - dt.timedelta(days=9),
                    next_update=pki.NOW - dt.timedelta(days=2),
                )
            ),
            "out of date",
        ),
        (lambda: b"<html>404</html>", "not a CRL"),
    ],
)
async def test_a_crl_that_cannot_be_trusted_is_unavailable(
    crls: HttpReceiver, make: object, why: str
) -> None:
    url = serve_crl(crls, make())  # type: ignore[operator]
    found = await check(CA.leaf("crl.test", crl_urls=[url]))
    assert found.status is RevocationStatus.UNAVAILABLE
    assert why in (found.detail or "")


async def test_a_10_mib_crl_is_read_and_a_25_mib_one_refused(crls: HttpReceiver) -> None:
    leaf = CA.leaf("big.test", serial=0xB16)
    url = serve_crl(crls, large_crl(ISSUER, {leaf.cert.serial_number: REVOCATION}))
    found = await check(CA.leaf("big.test", serial=0xB16, crl_urls=[url]))
    assert found.status is RevocationStatus.REVOKED
    huge = serve_crl(crls, large_crl(ISSUER, {}, size=25 * 1024 * 1024), "/huge.crl")
    refused = await check(CA.leaf("huge.test", crl_urls=[huge]))
    assert refused.status is RevocationStatus.UNAVAILABLE
    assert "larger than 20 MiB" in (refused.detail or "")


async def test_a_crl_behind_a_redirect_is_followed(crls: HttpReceiver) -> None:
    target = serve_crl(crls, crl_der(make_crl(ISSUER, {})), "/new.crl")
    crls.route("/old.crl", Answer(301, headers={"Location": "/new.crl"}))
    found = await check(CA.leaf("moved.test", crl_urls=[f"{crls.url}/old.crl"]))
    assert found.status is RevocationStatus.GOOD
    assert found.source == f"CRL {crls.url}/old.crl"
    assert target.endswith("/new.crl")


async def test_without_crls_only_the_responder_is_asked(crls: HttpReceiver) -> None:
    url = serve_crl(crls, crl_der(make_crl(ISSUER, {})))
    found = await check(CA.leaf("pem.test", crl_urls=[url]), crl=False)
    assert found.status is RevocationStatus.UNAVAILABLE
    assert found.detail == "the certificate names no OCSP responder"
    assert found.checked_at is None
    assert crls.requests == []


async def test_a_certificate_naming_no_one_costs_nothing() -> None:
    found = await check(CA.leaf("plain.test"))
    assert found.status is RevocationStatus.UNAVAILABLE
    assert found.checked_at is None
    assert found.detail == "the certificate names no OCSP responder and no CRL"


# --- the guard -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_responder_or_crl_is_refused_unless_allowed(
    crls: HttpReceiver, host: str
) -> None:
    url = serve_crl(crls, crl_der(make_crl(ISSUER, {}))).replace("127.0.0.1", host)
    ocsp_url = f"http://{host}:{crls.port}/ocsp"
    leaf = CA.leaf("private.test", ocsp_urls=[ocsp_url], crl_urls=[url])
    guarded = Settings(allow_private_targets=False, probe_timeout_s=TIMEOUT)
    found = await checker(guarded).check((leaf.cert, ISSUER.cert))
    assert found.status is RevocationStatus.UNAVAILABLE
    assert found.detail is not None and found.detail.count("refused to connect") == 2
    assert crls.requests == []
    assert (await checker().check((leaf.cert, ISSUER.cert))).status is RevocationStatus.GOOD


# --- the cache -----------------------------------------------------------------------------------


async def test_twenty_devices_of_one_issuer_fetch_its_crl_once(crls: HttpReceiver) -> None:
    url = serve_crl(crls, large_crl(ISSUER, {}, size=1024 * 1024))
    shared = checker()
    leaves = [CA.leaf(f"d{i}.test", crl_urls=[url]).cert for i in range(20)]
    together = await asyncio.gather(*(shared.check((leaf, ISSUER.cert)) for leaf in leaves[:10]))
    one_by_one = [await shared.check((leaf, ISSUER.cert)) for leaf in leaves[10:]]
    assert {r.status for r in [*together, *one_by_one]} == {RevocationStatus.GOOD}
    assert len(crls.requests) == 1
    assert shared.fetches == 1


async def test_one_certificate_asks_its_responder_once_until_next_update(
    crls: HttpReceiver,
) -> None:
    serial = 0x1CE
    this_update = clock.now() - dt.timedelta(minutes=1)
    answer = ocsp_response(
        with_serial(serial),
        ISSUER,
        this_update=this_update,
        next_update=this_update + dt.timedelta(hours=1),
    )
    url = crls.serve_bytes("/ocsp", answer, OCSP_RESPONSE_TYPE)
    leaf = CA.leaf("cached.test", serial=serial, ocsp_urls=[url])
    shared = checker()
    for _ in range(5):
        assert (await shared.check((leaf.cert, ISSUER.cert))).status is RevocationStatus.GOOD
    assert len(crls.requests) == 1
    just_past = this_update + dt.timedelta(hours=1, seconds=1)
    with clock.use_clock(lambda: just_past):
        found = await shared.check((leaf.cert, ISSUER.cert))
    assert len(crls.requests) == 2  # asked again (a CA's clock may lag a little: still GOOD)
    assert found.status is RevocationStatus.GOOD
    well_past = this_update + dt.timedelta(hours=1, minutes=10)
    with clock.use_clock(lambda: well_past):
        found = await shared.check((leaf.cert, ISSUER.cert))
    assert len(crls.requests) == 3
    assert found.status is RevocationStatus.UNAVAILABLE
    assert "out of date" in (found.detail or "")


async def test_a_failure_is_remembered_for_a_few_minutes() -> None:
    with faulty_ocsp_responder(OcspFault.HTTP_ERROR) as broken:
        leaf = CA.leaf("failing.test", ocsp_urls=[broken.url + "/"])
        shared = checker()
        for _ in range(3):
            found = await shared.check((leaf.cert, ISSUER.cert))
            assert found.status is RevocationStatus.UNAVAILABLE
        assert len(broken.requests) == 1
        later = clock.now() + dt.timedelta(minutes=6)
        with clock.use_clock(lambda: later):
            await shared.check((leaf.cert, ISSUER.cert))
        assert len(broken.requests) == 2
