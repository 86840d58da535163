"""Key and TLS facts through the API: keyType/keySize for every certificate, the negotiated
tlsVersion and cipher for hosts (null for a PEM), and their changes in the Activity note."""

from __future__ import annotations

import ssl
from typing import Any

from tests.api import helpers
from tests.api.addresses_support import NAME, free_port, leaf
from tests.conftest import GraphQLClient, World
from tests.fakes import pki
from tests.fakes.tls_server import FakeTlsServer

DEVICE = """
  id endpointsDisagree
  sslDetails { fingerprintSha256 keyType keySize tlsVersion cipher }
  endpoints { address fingerprintSha256 tlsVersion cipher }
  activity { text }
  alerts { kind }
"""
CREATE = f"""
mutation($input: CreateDeviceInput!) {{
  createDevice(input: $input) {{ device {{ {DEVICE} }} errors {{ code message }} }}
}}"""
FORCE = f"""
mutation($ids: [ID!]!) {{
  forceUpdate(ids: $ids) {{ results {{ changed device {{ {DEVICE} }} errors {{ code }} }} }}
}}"""


async def create(api: GraphQLClient, source: str) -> dict[str, Any]:
    org = await helpers.organization(api)
    data = await api.ok(
        CREATE, input={"organizationId": org, "category": "SSL_CERTIFICATE", "sslSource": source}
    )
    assert data["createDevice"]["errors"] == []
    device: dict[str, Any] = data["createDevice"]["device"]
    return device


async def test_pem_has_key_facts_and_no_tls_facts(api: GraphQLClient, world: World) -> None:
    for kind, expected in (("ec384", ("EC", 384)), ("ed25519", ("Ed25519", 256))):
        cert = pki.test_ca().leaf(f"{kind}.example", key_kind=kind)
        device = await create(api, cert.pem)
        details = device["sslDetails"]
        assert (details["keyType"], details["keySize"]) == expected
        assert details["tlsVersion"] is None and details["cipher"] is None
        assert device["endpoints"] == [] and device["endpointsDisagree"] is False


async def test_a_host_shows_the_negotiated_version_and_cipher(
    api: GraphQLClient, world: World
) -> None:
    device = await create(api, world.host("good.test"))
    details = device["sslDetails"]
    assert details["tlsVersion"] == "TLSv1.3"
    assert details["cipher"].startswith("TLS_")
    assert (details["keyType"], details["keySize"]) == ("RSA", 2048)


async def test_a_new_tls_version_and_cipher_are_recorded(api: GraphQLClient, world: World) -> None:
    """The same certificate, now served by a TLS 1.2 server: the Activity note says what the
    handshake changed, and no alert is raised for it."""
    certificate = leaf()
    port = free_port()
    world.dns.set_records(f"{NAME}.", "A", "127.0.0.2")
    with (
        FakeTlsServer({}, certificate, host="127.0.0.2", port=port),
        FakeTlsServer(
            {}, certificate, host="127.0.0.3", port=port, maximum_version=ssl.TLSVersion.TLSv1_2
        ),
    ):
        device = await create(api, f"{NAME}:{port}")
        before = device["sslDetails"]
        world.dns.set_records(f"{NAME}.", "A", "127.0.0.3")
        data = await api.ok(FORCE, ids=[device["id"]])
    [result] = data["forceUpdate"]["results"]
    after = result["device"]["sslDetails"]
    assert result["errors"] == [] and result["changed"] is True
    assert (before["tlsVersion"], after["tlsVersion"]) == ("TLSv1.3", "TLSv1.2")
    assert after["fingerprintSha256"] == before["fingerprintSha256"]
    note = result["device"]["activity"][0]["text"]
    assert f"TLS Version: TLSv1.3 → TLSv1.2; Cipher: {before['cipher']} → {after['cipher']}" in note
    assert result["device"]["endpoints"] == [
        {
            "address": "127.0.0.3",
            "fingerprintSha256": after["fingerprintSha256"],
            "tlsVersion": "TLSv1.2",
            "cipher": after["cipher"],
        }
    ]
    assert result["device"]["alerts"] == []
