"""Certificates, private keys and tokens sent to the API never reach the logs, while the errors
they came with are still logged usefully (message, place, the query around it)."""

from __future__ import annotations

import json
import logging

import pytest
from graphql.pyutils import inspect

from api.redaction import redact
from tests.conftest import GraphQLClient
from tests.fakes import pki
from tests.security.support import CREATE_DEVICE
from tracking.manage import queries as tracking_queries

LEAF = pki.test_ca().leaf("logged.example")
CERTIFICATE = LEAF.pem
KEY = LEAF.key_pem.decode()
# Lines of the PEM bodies: none may be logged, in any form.
SECRET_LINES = [
    line for line in (CERTIFICATE + KEY).splitlines() if line and not line.startswith("-----")
]
TOKEN = "dst_" + "Q" * 20 + "secretpart" + "x" * 13
WEBHOOK_SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw=="


def _assert_nothing_secret(caplog: pytest.LogCaptureFixture) -> None:
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for line in SECRET_LINES:
        for piece in (line[:24], line[-24:]):  # also what a shortened quote keeps of a line
            if len(piece) >= 16:
                assert piece not in logged, piece
    for secret in ("secretpart", WEBHOOK_SECRET[6:], "Bearer abc.def"):
        assert secret not in logged, secret


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "dstrack.api" and r.levelno == logging.WARNING
    ]


async def test_a_key_in_the_variables_is_not_logged_with_the_misspelled_field(
    api: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = await api.execute(
        CREATE_DEVICE,
        input={
            "organizationId": "x",
            "category": "SSL_CERTIFICATE",
            "sslSource": CERTIFICATE + KEY,
            "sslSourc": "oops",
        },
    )
    assert body["data"] is None
    _assert_nothing_secret(caplog)
    [logged] = _warnings(caplog)
    assert "Field 'sslSourc' is not defined by type 'CreateDeviceInput'" in logged
    assert "Did you mean 'sslSource'?" in logged and "-----BEGIN CERTIFICATE-----" in logged
    assert not [r for r in caplog.records if r.name == "strawberry.execution"]


@pytest.mark.parametrize("order", ["certificate, key", "key, certificate"])
async def test_a_key_in_the_query_text_is_not_logged_with_the_misspelled_field(
    api: GraphQLClient, caplog: pytest.LogCaptureFixture, order: str
) -> None:
    caplog.set_level(logging.DEBUG)
    source = CERTIFICATE + KEY if order == "certificate, key" else KEY + CERTIFICATE
    mutation = (
        'mutation { createDevice(input: {organizationId: "x", category: SSL_CERTIFICATE, '
        f'sslSource: {json.dumps(source)}, nme: "typo"}}) {{ device {{ id }} }} }}'
    )
    body = await api.execute(mutation)
    assert "nme" in body["errors"][0]["message"]
    _assert_nothing_secret(caplog)
    [logged] = _warnings(caplog)
    assert "Field 'nme' is not defined by type 'CreateDeviceInput'" in logged
    assert 'nme: "typo"' in logged  # the query around the error, masked where it must be


async def test_a_syntax_error_inside_a_key_shows_the_place_but_not_the_key(
    api: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lines = KEY.splitlines()
    broken = "\n".join([*lines[:5], lines[5][:10] + "\\q" + lines[5][10:], *lines[6:]])
    mutation = (
        'mutation { createDevice(input: {organizationId: "x", category: SSL_CERTIFICATE, '
        f"sslSource: {json.dumps(broken).replace(chr(92) * 2 + 'q', chr(92) + 'q')}}}) "
        "{ device { id } } }"
    )
    body = await api.execute(mutation)
    assert "Invalid character escape sequence" in body["errors"][0]["message"]
    _assert_nothing_secret(caplog)
    [logged] = _warnings(caplog)
    assert "Invalid character escape sequence" in logged and "near: " in logged


async def test_tokens_in_a_query_are_masked(
    api: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    query = (
        f'{{ a: device(id: "{WEBHOOK_SECRET}") {{ id }} b: device(id: "Bearer abc.def") '
        f'{{ id }} c: device(id: "{TOKEN}") {{ nope }} }}'
    )
    body = await api.execute(query)
    assert "nope" in body["errors"][0]["message"]
    _assert_nothing_secret(caplog)
    [logged] = _warnings(caplog)
    assert "Cannot query field 'nope' on type 'Device'" in logged and "dst_" in logged


async def test_an_internal_error_is_logged_with_its_reference_and_without_its_secrets(
    api: GraphQLClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"could not use {KEY} with {TOKEN}")

    monkeypatch.setattr(tracking_queries, "list_devices", explode)
    caplog.set_level(logging.DEBUG)
    body = await api.execute("{ devices { totalCount } }")
    reference = body["errors"][0]["extensions"]["reference"]
    _assert_nothing_secret(caplog)
    [record] = [r for r in caplog.records if reference in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_text is not None
    assert "RuntimeError: could not use -----BEGIN PRIVATE KEY-----" in record.exc_text
    assert "Traceback" in caplog.text and "explode" in caplog.text


def test_shortened_quotes_of_a_value_are_masked_whatever_they_kept() -> None:
    """graphql-core quotes a variable's value shortened to 240 characters, from both ends:
    a block may keep its BEGIN line and lose its END, or the other way round."""
    for value in (
        {"sslSource": CERTIFICATE + KEY, "sslSourc": 1},
        {"sslSource": KEY + CERTIFICATE, "sslSourc": 1},
        {"sslSource": KEY, "name": "x" * 300},
        {"name": "x" * 300, "sslSource": KEY},
    ):
        quoted = inspect(value)
        masked = redact(quoted)
        assert "sslSourc" in masked
        for line in SECRET_LINES:
            for piece in (line[:16], line[-16:]):
                assert piece not in masked, (quoted, masked)


def test_masking_a_query_keeps_its_lines_and_columns() -> None:
    query = f'mutation {{ x(a: """\n{KEY}""", b: "{TOKEN}") }}'
    masked = redact(query, keep_layout=True)
    assert len(masked) == len(query)
    assert [len(line) for line in masked.splitlines()] == [len(x) for x in query.splitlines()]
    assert "-----BEGIN PRIVATE KEY-----" in masked and "-----END PRIVATE KEY-----" in masked
    assert "secretpart" not in masked and "dst_****" in masked
