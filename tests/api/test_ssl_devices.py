"""SSL Certificate devices end to end: GraphQL over HTTP -> DNS -> TLS with SNI -> database."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from tests.api import helpers, queries
from tests.conftest import GraphQLClient, World, api_client, services_with
from tests.fakes import pki
from tests.fakes.tls_server import NonTlsServer, SilentServer, standard_certificates
from tracking.refresh.services import Services

URI_FORMAT = "Please double-check your input and try again (Invalid URI Format)"
HTTP_WEB_REQUEST = "Please double check your input and try again (HttpWebRequest error)"
NOT_FOUND = "SSL Certificate not found. Please check spelling and try again."
UNAVAILABLE = "Unable to retrieve SSL Details"
INVALID_PEM = (
    "Unable to process PEM-encoded certificate. Please double-check certificate and try again."
)


def _fingerprint(cert: pki.Issued) -> str:
    digest = cert.cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


async def test_host_source_retrieves_leaf_and_chain_with_sni(
    api: GraphQLClient, world: World
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))

    served = standard_certificates()["good.test"]
    details = device["sslDetails"]
    assert device["name"] == world.host("good.test")
    assert device["sslSource"] == {
        "kind": "HOST",
        "host": "good.test",
        "port": world.tls_port,
        "pem": None,
    }
    assert details["commonName"] == "good.test"
    assert details["issuedBy"] == "dstrack Test Intermediate CA"
    assert details["subjectAlternativeNames"] == "good.test"
    assert details["fingerprintSha256"] == _fingerprint(served.leaf)
    assert details["chainLength"] == 2
    assert details["chainPem"] == served.chain_pem
    assert details["chainTrusted"] is True
    assert details["hostnameMatches"] is True
    assert world.tls.server_names_seen[-1] == "good.test"
    assert device["product"] == {"id": device["product"]["id"], "name": "None", "isSystem": True}
    assert device["lastUpdateError"] is None


@pytest.mark.parametrize(
    ("name", "trusted", "matches"),
    [
        ("expired.test", False, True),
        ("self-signed.test", False, True),
        ("wrong-host.test", True, False),
    ],
)
async def test_untrusted_certificates_are_still_retrieved_and_shown(
    api: GraphQLClient, world: World, name: str, trusted: bool, matches: bool
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host(name))

    served = standard_certificates()[name]
    details = device["sslDetails"]
    assert details["fingerprintSha256"] == _fingerprint(served.leaf)
    assert details["chainTrusted"] is trusted
    assert details["hostnameMatches"] is matches
    if not trusted:
        assert details["chainTrustError"]


async def test_expired_certificate_shows_its_past_validity(
    api: GraphQLClient, world: World
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("expired.test"))
    leaf = standard_certificates()["expired.test"].leaf.cert
    assert device["sslDetails"]["validUntil"] == leaf.not_valid_after_utc.isoformat()
    assert device["updateSchedule"]["interval"] == "PT24H"


async def test_pem_source_is_decoded_locally_and_never_scheduled(
    api: GraphQLClient, world: World
) -> None:
    cert = pki.issue(
        pki.name("pem.example", o="Datto, Inc.", ou="IT", l="Norwalk", st="Connecticut", c="US"),
        issuer=pki.test_ca().intermediate,
        dns_names=["pem.example", "*.pem.example"],
        ip_addresses=["192.0.2.7"],
        serial=0x0A1B2C,
    )
    org = await helpers.organization(api)
    connections_before = len(world.tls.connections)
    device = await helpers.ssl_device(api, org, f"  pasted:\n{cert.pem}\n")

    details = device["sslDetails"]
    assert device["name"] == "pem.example"
    assert device["sslSource"]["kind"] == "PEM"
    assert device["sslSource"]["pem"] == cert.pem
    assert details == details | {
        "commonName": "pem.example",
        "organization": "Datto, Inc.",
        "organizationalUnit": "IT",
        "location": "Norwalk, Connecticut, US",
        "serialNumber": "0A1B2C",
        "signatureAlgorithm": "sha256RSA",
        "subjectAlternativeNames": "pem.example | *.pem.example | 192.0.2.7",
        "subjectAlternativeNameList": ["pem.example", "*.pem.example", "192.0.2.7"],
        "issuedBy": "dstrack Test Intermediate CA",
        "hostnameMatches": None,
        "chainLength": 1,
    }
    assert device["updateSchedule"] is None
    assert len(world.tls.connections) == connections_before
    assert device["activity"][0]["text"].startswith("SSL certificate details decoded")
    assert len(device["rawFiles"]) == 1


@pytest.mark.parametrize(
    ("source", "code", "message"),
    [
        ("\\datto.com", "INVALID_URI_FORMAT", URI_FORMAT),
        ("htps:\\\\datto.com", "HTTP_WEB_REQUEST_ERROR", HTTP_WEB_REQUEST),
        ("lalala.test", "CERTIFICATE_NOT_FOUND", NOT_FOUND),
        (
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----",
            "INVALID_PEM",
            INVALID_PEM,
        ),
        ("", "REQUIRED", None),
    ],
)
async def test_invalid_sources_get_the_reference_messages_and_save_nothing(
    api: GraphQLClient, world: World, source: str, code: str, message: str | None
) -> None:
    org = await helpers.organization(api)
    payload = await helpers.create_device(
        api, organizationId=org, category="SSL_CERTIFICATE", sslSource=source
    )
    assert payload["device"] is None
    [error] = payload["errors"]
    assert error["code"] == code
    assert error["field"] == "sslSource" or code == "CERTIFICATE_NOT_FOUND"
    if message is not None:
        assert error["message"] == message
    assert await helpers.device_count(api) == 0


async def test_two_certificates_in_one_pem_are_refused(api: GraphQLClient) -> None:
    ca = pki.test_ca()
    org = await helpers.organization(api)
    payload = await helpers.create_device(
        api,
        organizationId=org,
        category="SSL_CERTIFICATE",
        sslSource=ca.leaf("a.test").pem + ca.intermediate.pem,
    )
    assert [(e["code"], e["message"]) for e in payload["errors"]] == [("INVALID_PEM", INVALID_PEM)]
    assert await helpers.device_count(api) == 0


async def test_a_port_without_tls_gives_no_ssl_details(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    with NonTlsServer() as plain:
        payload = await helpers.create_device(
            api,
            organizationId=org,
            category="SSL_CERTIFICATE",
            sslSource=f"https://no-tls.test:{plain.address[1]}/",
        )
    assert [(e["code"], e["message"]) for e in payload["errors"]] == [
        ("SSL_DETAILS_UNAVAILABLE", UNAVAILABLE)
    ]
    assert await helpers.device_count(api) == 0


async def test_a_silent_port_times_out(api: GraphQLClient, services: Services) -> None:
    org = await helpers.organization(api)
    with SilentServer() as silent:
        started = time.monotonic()
        payload = await helpers.create_device(
            api,
            organizationId=org,
            category="SSL_CERTIFICATE",
            sslSource=f"silent.test:{silent.address[1]}",
        )
        elapsed = time.monotonic() - started
    assert [e["code"] for e in payload["errors"]] == ["SSL_DETAILS_UNAVAILABLE"]
    assert elapsed < 4 * services.settings.probe_timeout_s
    assert await helpers.device_count(api) == 0


async def test_a_closed_port_is_not_found(api: GraphQLClient, closed_port: int) -> None:
    org = await helpers.organization(api)
    payload = await helpers.create_device(
        api, organizationId=org, category="SSL_CERTIFICATE", sslSource=f"good.test:{closed_port}"
    )
    assert [(e["code"], e["message"]) for e in payload["errors"]] == [
        ("CERTIFICATE_NOT_FOUND", NOT_FOUND)
    ]


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("good.test:{port}", "PRIVATE_ADDRESS_REFUSED"),  # a name resolving to 127.0.0.1
        ("127.0.0.1:{port}", "PRIVATE_ADDRESS_REFUSED"),
        ("[::ffff:127.0.0.1]:{port}", "PRIVATE_ADDRESS_REFUSED"),
        ("https://2130706433:{port}", "INVALID_URI_FORMAT"),  # decimal IPv4 is not a host
    ],
)
async def test_private_addresses_are_refused_unless_allowed(
    world: World, services: Services, source: str, code: str
) -> None:
    guarded = services_with(services, allow_private_targets=False)
    async with api_client(guarded) as api:
        org = await helpers.organization(api)
        payload = await helpers.create_device(
            api,
            organizationId=org,
            category="SSL_CERTIFICATE",
            sslSource=source.format(port=world.tls_port),
        )
        assert [e["code"] for e in payload["errors"]] == [code]
        assert world.tls.connections == []
        assert await helpers.device_count(api) == 0


async def test_ip_literal_host_sends_no_sni(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, f"127.0.0.1:{world.tls_port}")
    assert world.tls.server_names_seen[-1] is None
    assert device["sslDetails"]["commonName"] == "default.test"
    assert device["sslDetails"]["hostnameMatches"] is False


async def test_created_device_reads_back_the_same(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    created = await helpers.ssl_device(api, org, world.host("good.test"), name="Main site")
    read = (await api.ok(queries.DEVICE, id=created["id"]))["device"]
    assert read == created
    assert read["name"] == "Main site"


async def test_raw_file_download_has_the_chain(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    [raw] = device["rawFiles"]
    response = await api.http.get(raw["url"], headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-pem-file")
    assert response.content.decode().endswith(standard_certificates()["good.test"].chain_pem)
    assert len(response.content) == raw["sizeBytes"]
    assert (await api.http.get(raw["url"])).status_code == 401


def _der(cert: pki.Issued) -> bytes:
    return cert.cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("category", "field", "value"),
    [
        ("STANDARD", "sslSource", "good.test"),
        ("STANDARD", "domain", "example.com"),
        ("DOMAIN", "sslSource", "good.test"),
        ("SSL_CERTIFICATE", "domain", "example.com"),
    ],
)
async def test_inputs_of_another_category_are_refused(
    api: GraphQLClient, category: str, field: str, value: str
) -> None:
    org = await helpers.organization(api)
    fields = {"organizationId": org, "category": category, "name": "x", field: value}
    if category == "DOMAIN":
        fields["domain"] = "example.com"
    if category == "SSL_CERTIFICATE":
        fields["sslSource"] = pki.test_ca().leaf("x.test").pem
    payload = await helpers.create_device(api, **fields)
    assert payload["device"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [(field, "INVALID_INPUT")]
    assert await helpers.device_count(api) == 0
