"""Beyond HTTPS end to end: createDevice with each scheme -> DNS -> the protocol's start ->
TLS -> database -> what the API shows. Real servers where the fixtures have them (aiosmtpd,
PostgreSQL with ssl=on, Dovecot), the RFC-faithful fakes otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import helpers
from tests.conftest import GraphQLClient, World
from tests.fakes.dovecot_server import DovecotServer
from tests.fakes.dovecot_server import dovecot_server as dovecot_server  # fixture
from tests.fakes.postgres_server import PostgresTlsServer
from tests.fakes.postgres_server import postgres_tls_server as postgres_tls_server  # fixture
from tests.fakes.smtp_server import FakeSmtpServer, SmtpMode
from tests.fakes.starttls_servers import Behaviour, server_for
from tests.fakes.tls_server import ServedCertificate

PROTOCOL_DEVICE = """
  id name checkAllAddresses endpointsDisagree lastUpdateError
  sslSource { kind host port pem protocol }
  sslDetails { commonName fingerprintSha256 validUntil keyType keySize tlsVersion cipher }
  endpoints { address port fingerprintSha256 validUntil tlsVersion cipher error }
  activity { text }
"""
CREATE = f"""
mutation($input: CreateDeviceInput!) {{
  createDevice(input: $input) {{ device {{ {PROTOCOL_DEVICE} }} errors {{ field code message }} }}
}}"""

# scheme -> the protocol stored and shown
PROTOCOLS = {
    "smtp": "smtp",
    "submission": "submission",
    "smtps": "smtps",
    "imap": "imap",
    "imaps": "imaps",
    "pop3": "pop3",
    "pop3s": "pop3s",
    "ftp": "ftp",
    "ldap": "ldap",
    "ldaps": "ldaps",
    "xmpp": "xmpp",
    "postgres": "postgres",
    "postgresql": "postgres",
}


def fingerprint(served: ServedCertificate) -> str:
    from cryptography.hazmat.primitives import hashes

    return served.leaf.cert.fingerprint(hashes.SHA256()).hex(":").upper()


async def create(api: GraphQLClient, source: str, **fields: Any) -> dict[str, Any]:
    org = await helpers.organization(api)
    data = await api.ok(
        CREATE,
        input={"organizationId": org, "category": "SSL_CERTIFICATE", "sslSource": source, **fields},
    )
    payload: dict[str, Any] = data["createDevice"]
    return payload


def mail_name(world: World) -> str:
    world.dns.set_records("mail.test.", "A", "127.0.0.1")
    return "mail.test"


def assert_retrieved(device: dict[str, Any], served: ServedCertificate, port: int) -> None:
    details = device["sslDetails"]
    leaf = served.leaf.cert
    assert details["fingerprintSha256"] == fingerprint(served)
    assert details["validUntil"] == leaf.not_valid_after_utc.isoformat()
    assert (details["keyType"], details["keySize"]) == ("RSA", 2048)
    assert details["tlsVersion"] in ("TLSv1.3", "TLSv1.2")
    assert details["cipher"]
    assert device["endpoints"] == [
        {
            "address": "127.0.0.1",
            "port": port,
            "fingerprintSha256": details["fingerprintSha256"],
            "validUntil": details["validUntil"],
            "tlsVersion": details["tlsVersion"],
            "cipher": details["cipher"],
            "error": None,
        }
    ]
    assert device["endpointsDisagree"] is False
    assert device["checkAllAddresses"] is False
    assert device["lastUpdateError"] is None


@pytest.mark.parametrize("scheme", list(PROTOCOLS))
async def test_create_a_device_with_each_scheme(
    api: GraphQLClient, world: World, scheme: str
) -> None:
    host = mail_name(world)
    with server_for(scheme) as server:
        payload = await create(api, f"{scheme.upper()}://{host}:{server.port}/ignored")
    assert payload["errors"] == []
    device = payload["device"]
    protocol = PROTOCOLS[scheme]
    assert device["name"] == f"{protocol}://mail.test:{server.port}"
    assert device["sslSource"] == {
        "kind": "HOST",
        "host": "mail.test",
        "port": server.port,
        "pem": None,
        "protocol": protocol,
    }
    assert_retrieved(device, server.certificate, server.port)
    first = device["activity"][0]["text"]
    assert first.startswith(f"SSL certificate details retrieved from {protocol}://mail.test:")
    assert server.sessions[0].server_name == "mail.test"


@pytest.mark.parametrize("scheme", ["smtp", "imap", "pop3", "ftp", "ldap", "xmpp", "postgres"])
async def test_no_starttls_saves_nothing(api: GraphQLClient, world: World, scheme: str) -> None:
    host = mail_name(world)
    with server_for(scheme, Behaviour.NO_STARTTLS) as server:
        payload = await create(api, f"{scheme}://{host}:{server.port}")
    assert payload["device"] is None
    assert payload["errors"] == [
        {
            "field": None,
            "code": "SSL_DETAILS_UNAVAILABLE",
            "message": "Unable to retrieve SSL Details",
        }
    ]
    assert await helpers.device_count(api) == 0


@pytest.mark.parametrize("behaviour", [Behaviour.TALKS_FOREVER, Behaviour.HUGE_LINE])
async def test_a_hostile_mail_server_saves_nothing(
    api: GraphQLClient, world: World, behaviour: Behaviour
) -> None:
    host = mail_name(world)
    with server_for("submission", behaviour) as server:
        payload = await create(api, f"submission://{host}:{server.port}")
    assert [e["code"] for e in payload["errors"]] == ["SSL_DETAILS_UNAVAILABLE"]


@pytest.mark.parametrize("source", ["gopher://mail.test", "sftp://mail.test:22", "ws://mail.test"])
async def test_other_schemes_stay_http_web_request_errors(
    api: GraphQLClient, world: World, source: str
) -> None:
    payload = await create(api, source)
    assert [e["code"] for e in payload["errors"]] == ["HTTP_WEB_REQUEST_ERROR"]


# -- real servers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "scheme"),
    [(SmtpMode.STARTTLS, "smtp"), (SmtpMode.STARTTLS, "submission"), (SmtpMode.SMTPS, "smtps")],
)
async def test_aiosmtpd(api: GraphQLClient, world: World, mode: SmtpMode, scheme: str) -> None:
    host = mail_name(world)
    with FakeSmtpServer(mode) as smtp:
        payload = await create(api, f"{scheme}://{host}:{smtp.port}")
    assert payload["errors"] == []
    assert payload["device"]["sslSource"]["protocol"] == scheme
    assert_retrieved(payload["device"], smtp.certificate, smtp.port)


async def test_aiosmtpd_without_starttls(api: GraphQLClient, world: World) -> None:
    host = mail_name(world)
    with FakeSmtpServer(SmtpMode.PLAIN) as smtp:
        payload = await create(api, f"smtp://{host}:{smtp.port}")
    assert [e["code"] for e in payload["errors"]] == ["SSL_DETAILS_UNAVAILABLE"]


async def test_real_postgresql(
    api: GraphQLClient, world: World, postgres_tls_server: PostgresTlsServer
) -> None:
    host = mail_name(world)
    payload = await create(api, f"postgresql://{host}:{postgres_tls_server.port}/postgres")
    assert payload["errors"] == []
    assert payload["device"]["sslSource"]["protocol"] == "postgres"
    assert_retrieved(payload["device"], postgres_tls_server.certificate, postgres_tls_server.port)


@pytest.mark.parametrize("scheme", ["imap", "imaps", "pop3", "pop3s"])
async def test_real_dovecot(
    api: GraphQLClient, world: World, dovecot_server: DovecotServer, scheme: str
) -> None:
    host = mail_name(world)
    port = dovecot_server.ports[scheme]
    payload = await create(api, f"{scheme}://{host}:{port}")
    assert payload["errors"] == []
    assert_retrieved(payload["device"], dovecot_server.certificate, port)
