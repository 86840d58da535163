"""The real trust store: the system's roots plus ``DSTRACK_CA_BUNDLE``, read from disk.

Most tests hand the test CA's root in directly (``Services.roots_override``); these read the
roots the way a deployment does, through ``load_trust_roots``.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.api import helpers
from tests.conftest import World, api_client, services_with
from tests.fakes import pki
from tracking.core import clock
from tracking.core.settings import Settings
from tracking.core.verdicts import verify_chain
from tracking.probes import truststore
from tracking.probes.truststore import load_trust_roots, system_store_files
from tracking.refresh.services import Services

LOG = "tracking.probes.truststore"
BROKEN_ENTRY = b"-----BEGIN CERTIFICATE-----\nMIIBbroken/notbase64==\n-----END CERTIFICATE-----\n"


def good_chain() -> list[x509.Certificate]:
    ca = pki.test_ca()
    return [ca.leaf("good.test").cert, ca.intermediate.cert]


def trusted(roots: Sequence[x509.Certificate]) -> bool:
    return verify_chain(good_chain(), roots, clock.now()).trusted


@pytest.fixture
def system_roots() -> list[x509.Certificate]:
    roots = load_trust_roots(None)
    assert len(roots) > 50, "this machine has no system trust store to test with"
    return roots


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "extra-roots.pem"
    path.write_text("# the test CA, added by the operator\n" + pki.test_ca().root.pem)
    return path


# --- load_trust_roots ---------------------------------------------------------------------------


def test_the_system_store_alone_does_not_trust_the_test_ca(
    system_roots: list[x509.Certificate],
) -> None:
    assert all(root.subject != pki.test_ca().root.cert.subject for root in system_roots)
    assert not trusted(system_roots)


def test_the_bundle_adds_to_the_system_store(
    system_roots: list[x509.Certificate], bundle: Path
) -> None:
    roots = load_trust_roots(bundle)

    assert trusted(roots)
    assert roots[: len(system_roots)] == system_roots  # the system store is kept whole
    assert roots[len(system_roots) :] == [pki.test_ca().root.cert]


def test_a_broken_bundle_entry_does_not_void_the_store(
    system_roots: list[x509.Certificate], tmp_path: Path
) -> None:
    path = tmp_path / "mixed.pem"
    path.write_bytes(
        BROKEN_ENTRY
        + b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        + pki.test_ca().root.pem.encode()
        + BROKEN_ENTRY
    )

    roots = load_trust_roots(path)

    assert trusted(roots)
    assert len(roots) == len(system_roots) + 1


def test_a_missing_bundle_is_a_warning_and_the_system_store_stays(
    system_roots: list[x509.Certificate], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-such-bundle.pem"
    with caplog.at_level(logging.WARNING, logger=LOG):
        roots = load_trust_roots(missing)

    assert roots == system_roots
    assert not trusted(roots)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"DSTRACK_CA_BUNDLE {missing} cannot be read (No such file or directory): ignored"
    )


def test_a_bundle_without_a_pem_certificate_is_a_warning(
    system_roots: list[x509.Certificate], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    der = tmp_path / "root.der"
    der.write_bytes(pki.test_ca().root.cert.public_bytes(serialization.Encoding.DER))
    with caplog.at_level(logging.WARNING, logger=LOG):
        roots = load_trust_roots(der)

    assert roots == system_roots
    assert [r.getMessage() for r in caplog.records] == [
        f"DSTRACK_CA_BUNDLE {der} holds no PEM certificate: ignored"
    ]


def _paths(cafile: Path | None, capath: Path | None) -> ssl.DefaultVerifyPaths:
    return ssl.DefaultVerifyPaths(
        str(cafile) if cafile else None,  # type: ignore[arg-type]
        str(capath) if capath else None,  # type: ignore[arg-type]
        "SSL_CERT_FILE",
        str(cafile) if cafile else "",
        "SSL_CERT_DIR",
        str(capath) if capath else "",
    )


def test_a_system_store_directory_is_read_when_there_is_no_ca_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "certs"
    store.mkdir()
    (store / "dstrack-test.pem").write_text(pki.test_ca().root.pem)
    (store / "other.pem").write_text(pki.test_ca("Other").root.pem)
    (store / "README").write_text("not a certificate")
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: _paths(None, store))

    assert system_store_files() == [store / "dstrack-test.pem", store / "other.pem"]
    roots = load_trust_roots(None)
    assert trusted(roots) and len(roots) == 2


def test_without_a_system_store_only_the_bundle_is_trusted(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundle: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: _paths(None, None))
    with caplog.at_level(logging.WARNING, logger=LOG):
        roots = load_trust_roots(bundle)

    assert roots == [pki.test_ca().root.cert]
    assert "no system trust store found" in caplog.text


def test_the_system_ca_file_comes_from_python_s_default_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_CERT_FILE and distribution paths reach us through ssl.get_default_verify_paths."""
    cafile = tmp_path / "ca.pem"
    cafile.write_text(pki.test_ca().root.pem)
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: _paths(cafile, tmp_path))
    assert truststore.system_store_files() == [cafile]
    assert trusted(load_trust_roots(None))


# --- end to end: the chain-trust verdict users see ---------------------------------------------


def _real_roots(services: Services, ca_bundle: Path | None) -> Services:
    """The test world's services reading their roots from disk (no override)."""
    rebuilt = services_with(services, ca_bundle=ca_bundle)
    rebuilt.roots_override = None
    return rebuilt


@pytest.mark.parametrize("with_bundle", [True, False])
async def test_the_chain_verdict_uses_the_system_store_and_the_bundle(
    services: Services, world: World, bundle: Path, with_bundle: bool
) -> None:
    settings = Settings.from_env({"DSTRACK_CA_BUNDLE": str(bundle)} if with_bundle else {})
    real = _real_roots(services, settings.ca_bundle)
    async with api_client(real) as api:
        org = await helpers.organization(api)
        device = await helpers.ssl_device(api, org, world.host("good.test"))

    details = device["sslDetails"]
    assert details["chainTrusted"] is with_bundle
    assert (details["chainTrustError"] is None) is with_bundle
    assert len(real.trust_roots) == len(load_trust_roots(None)) + with_bundle


async def test_a_missing_bundle_leaves_verdicts_from_the_system_store(
    services: Services, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = _real_roots(services, tmp_path / "gone.pem")
    with caplog.at_level(logging.WARNING, logger=LOG):
        async with api_client(real) as api:
            org = await helpers.organization(api)
            device = await helpers.ssl_device(api, org, world.host("good.test"))

    assert device["lastUpdateError"] is None  # the certificate is shown ...
    assert device["sslDetails"]["chainTrusted"] is False  # ... untrusted, and says why
    assert device["sslDetails"]["chainTrustError"]
    assert "DSTRACK_CA_BUNDLE" in caplog.text and "gone.pem" in caplog.text
