"""Revocation through GraphQL: ``createDevice`` and ``forceUpdate`` show
``sslDetails { revocationStatus revokedAt revocationReason revocationCheckedAt }`` from a real
``openssl ocsp`` responder or a CRL; a revocation seen by an update is an Activity note change
and raises alert kind REVOKED; PEM devices ask an OCSP responder only when updated."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

from tests.api import helpers, queries
from tests.conftest import GraphQLClient, World
from tests.fakes import pki
from tests.fakes.clients import needs_openssl
from tests.fakes.crl import CRL_CONTENT_TYPE, crl_der, make_crl
from tests.fakes.crl import Revocation as Revoked
from tests.fakes.http_receiver import Answer, HttpReceiver
from tests.fakes.ocsp_responder import OcspResponder
from tests.fakes.tls_server import FakeTlsServer, served
from tracking.core import clock

CA = pki.test_ca()
REVOCATION = Revoked(at=pki.NOW - dt.timedelta(days=2), reason=x509.ReasonFlags.key_compromise)
GOOD_SERIAL, REVOKED_SERIAL = 0x5AFE, 0xDEAD
REVOCATION_FIELDS = "revocationStatus revokedAt revocationReason revocationCheckedAt"
DEVICE = f"""
query($id: ID!) {{ device(id: $id) {{
  name sslDetails {{ {REVOCATION_FIELDS} }} activity {{ text }} rawFiles {{ id }}
}} }}"""
FORCE_UPDATE = f"""
mutation($ids: [ID!]!) {{ forceUpdate(ids: $ids) {{ results {{
  deviceId changed message errors {{ code message }}
  device {{ sslDetails {{ {REVOCATION_FIELDS} }} }}
}} }} }}"""
ALERTS = "query { alerts(first: 10) { edges { node { kind severity message device { id } } } } }"


def leaf(name: str, **kwargs: Any) -> pki.Issued:
    return CA.leaf(name, **kwargs)


@pytest.fixture
def responder() -> Iterator[OcspResponder]:
    index = {s: CA.leaf(f"s{s:x}.test", serial=s).cert for s in (GOOD_SERIAL, REVOKED_SERIAL)}
    with OcspResponder(
        CA.intermediate, good=[index[GOOD_SERIAL]], revoked={index[REVOKED_SERIAL]: REVOCATION}
    ) as running:
        yield running


@pytest.fixture
def crls() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def host(world: World, certificates: dict[str, pki.Issued]) -> FakeTlsServer:
    """A TLS server of the test's own serving each certificate (with the intermediate) by
    name; the world's DNS resolves the names to it."""
    server = FakeTlsServer({n: served(c, CA.intermediate) for n, c in certificates.items()})
    world.dns.load({f"{name}.": {"A": "127.0.0.1"} for name in certificates})
    return server


async def device(api: GraphQLClient, org: str, source: str, name: str) -> dict[str, Any]:
    created = await helpers.ssl_device(api, org, source, name=name)
    read: dict[str, Any] = (await api.ok(DEVICE, id=created["id"]))["device"]
    return {"id": created["id"], **read}


async def force(api: GraphQLClient, device_id: str) -> dict[str, Any]:
    [result] = (await api.ok(FORCE_UPDATE, ids=[device_id]))["forceUpdate"]["results"]
    assert result["errors"] == []
    details: dict[str, Any] = result["device"]["sslDetails"]
    return details


@needs_openssl
async def test_created_devices_show_what_the_responder_says(
    api: GraphQLClient, world: World, responder: OcspResponder
) -> None:
    certificates = {
        "good.revocation.test": leaf(
            "good.revocation.test", serial=GOOD_SERIAL, ocsp_urls=[responder.url]
        ),
        "revoked.revocation.test": leaf(
            "revoked.revocation.test", serial=REVOKED_SERIAL, ocsp_urls=[responder.url]
        ),
        "plain.revocation.test": leaf("plain.revocation.test"),
    }
    org = await helpers.organization(api)
    before = clock.now()
    with host(world, certificates) as tls:
        good, revoked, plain = [
            await device(api, org, f"{name}:{tls.port}", name) for name in certificates
        ]
    assert good["sslDetails"]["revocationStatus"] == "GOOD"
    assert good["sslDetails"]["revokedAt"] is None
    assert dt.datetime.fromisoformat(good["sslDetails"]["revocationCheckedAt"]) >= before
    assert revoked["sslDetails"] == {
        "revocationStatus": "REVOKED",
        "revokedAt": REVOCATION.at.isoformat(),
        "revocationReason": "keyCompromise",
        "revocationCheckedAt": revoked["sslDetails"]["revocationCheckedAt"],
    }
    assert "revocation status REVOKED" in revoked["activity"][0]["text"]
    # No responder, no CRL: nobody to ask, and nothing was asked.
    assert plain["sslDetails"] == {
        "revocationStatus": "UNAVAILABLE",
        "revokedAt": None,
        "revocationReason": None,
        "revocationCheckedAt": None,
    }


async def test_a_revocation_seen_by_an_update_raises_the_revoked_alert(
    api: GraphQLClient, world: World, crls: HttpReceiver
) -> None:
    url = crls.serve_bytes("/int.crl", crl_der(make_crl(CA.intermediate, {})), CRL_CONTENT_TYPE)
    cert = leaf("shop.revocation.test", crl_urls=[url])
    org = await helpers.organization(api)
    with host(world, {"shop.revocation.test": cert}) as tls:
        shop = await device(api, org, f"shop.revocation.test:{tls.port}", "Shop")
        assert shop["sslDetails"]["revocationStatus"] == "GOOD"
        assert (await force(api, shop["id"]))["revocationStatus"] == "GOOD"
        assert len(crls.requests) == 1  # the CRL is cached: asked once for both updates

        revoked = make_crl(CA.intermediate, {cert.cert.serial_number: REVOCATION}, number=2)
        crls.serve_bytes("/int.crl", crl_der(revoked), CRL_CONTENT_TYPE)
        later = clock.now() + dt.timedelta(hours=7)  # past the cache's six hours
        with clock.use_clock(lambda: later):
            details = await force(api, shop["id"])
            assert len(crls.requests) == 2
            assert details["revocationStatus"] == "REVOKED"
            assert details["revokedAt"] == REVOCATION.at.isoformat()
            assert details["revocationReason"] == "keyCompromise"
            after = (await api.ok(DEVICE, id=shop["id"]))["device"]
            alerts = [e["node"] for e in (await api.ok(ALERTS))["alerts"]["edges"]]

        # The CRL host fails: a revocation is final, no second alert.
        crls.route("/int.crl", Answer(503))
        much_later = later + dt.timedelta(hours=7)
        with clock.use_clock(lambda: much_later):
            failed = await force(api, shop["id"])
            again = [e["node"] for e in (await api.ok(ALERTS))["alerts"]["edges"]]
        assert len(crls.requests) == 3
        assert failed["revocationStatus"] == "REVOKED"
        assert failed["revocationReason"] == "keyCompromise"
        assert len(again) == 1

    assert after["activity"][0]["text"].endswith("Revocation Status: GOOD → REVOKED.")
    # The chain did not change: no new RAW file for a revocation alone.
    assert len(after["rawFiles"]) == len(shop["rawFiles"]) == 1
    assert [(a["kind"], a["severity"], a["message"], a["device"]["id"]) for a in alerts] == [
        ("REVOKED", "CRITICAL", "Certificate Shop was revoked.", shop["id"])
    ]


@needs_openssl
async def test_a_pem_device_asks_its_responder_only_when_updated(
    api: GraphQLClient, responder: OcspResponder, crls: HttpReceiver
) -> None:
    url = crls.serve_bytes("/int.crl", crl_der(make_crl(CA.intermediate, {})), CRL_CONTENT_TYPE)
    ocsp_pem = leaf("pem.revocation.test", serial=REVOKED_SERIAL, ocsp_urls=[responder.url])
    crl_pem = leaf("crl-only.revocation.test", crl_urls=[url])
    org = await helpers.organization(api)
    created = await device(api, org, ocsp_pem.pem, "PEM with OCSP")
    assert created["sslDetails"]["revocationStatus"] == "UNAVAILABLE"
    assert created["sslDetails"]["revocationCheckedAt"] is None
    # The chain is the leaf alone: the issuer comes from ... nowhere; give it a caIssuers URL.
    issuer_url = crls.serve_bytes("/int.pem", CA.intermediate.pem.encode(), "application/x-pem")
    with_issuer = leaf(
        "pem2.revocation.test",
        serial=REVOKED_SERIAL,
        ocsp_urls=[responder.url],
        ca_issuers_urls=[issuer_url],
    )
    pem_device = await device(api, org, with_issuer.pem, "PEM with OCSP and issuer")
    updated = await force(api, pem_device["id"])
    assert (updated["revocationStatus"], updated["revocationReason"]) == (
        "REVOKED",
        "keyCompromise",
    )
    assert updated["revocationCheckedAt"] is not None
    # Without an issuer certificate to ask about, nothing can be trusted.
    assert (await force(api, created["id"]))["revocationStatus"] == "UNAVAILABLE"
    # A PEM device asks no CRL, even when updated.
    crl_device = await device(api, org, crl_pem.pem, "PEM with a CRL")
    assert (await force(api, crl_device["id"]))["revocationStatus"] == "UNAVAILABLE"
    assert [r.path for r in crls.requests] == ["/int.pem"]


async def test_the_graphql_schema_has_the_four_fields() -> None:
    from api.schema import schema

    printed = schema.as_str()
    assert "enum RevocationStatus {\n  GOOD\n  REVOKED\n  UNKNOWN\n  UNAVAILABLE\n}" in printed
    ssl_details = schema._schema.type_map["SslDetails"]
    fields = ssl_details.fields  # type: ignore[attr-defined]
    assert str(fields["revocationStatus"].type) == "RevocationStatus!"
    assert {str(fields[f].type) for f in ("revocationCheckedAt", "revokedAt")} == {"DateTime"}
    assert str(fields["revocationReason"].type) == "String"
    assert queries.SSL_DETAILS  # the shared document still reads (no required argument)


async def test_twenty_devices_of_one_issuer_updated_at_once_fetch_its_crl_once(
    api: GraphQLClient, world: World, crls: HttpReceiver
) -> None:
    url = crls.serve_bytes("/int.crl", crl_der(make_crl(CA.intermediate, {})), CRL_CONTENT_TYPE)
    names = [f"d{i}.revocation.test" for i in range(20)]
    org = await helpers.organization(api)
    with host(world, {name: leaf(name, crl_urls=[url]) for name in names}) as tls:
        ids = [
            (await helpers.ssl_device(api, org, f"{name}:{tls.port}", name=name))["id"]
            for name in names
        ]
        assert len(crls.requests) == 1  # 20 creations, one fetch
        later = clock.now() + dt.timedelta(hours=7)  # the cached CRL has expired
        with clock.use_clock(lambda: later):
            results = (await api.ok(FORCE_UPDATE, ids=ids))["forceUpdate"]["results"]
    assert len(crls.requests) == 2  # 20 updates at once (16 in flight), one fetch
    assert {r["device"]["sslDetails"]["revocationStatus"] for r in results} == {"GOOD"}
    assert {r["device"]["sslDetails"]["revocationCheckedAt"] for r in results} == {
        later.isoformat()
    }
