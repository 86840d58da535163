"""The HTTP receiver through httpx: records, scripted answers, faults, HTTPS, webhook signatures."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.http_receiver import (
    Answer,
    HttpReceiver,
    WebhookSignatureError,
    http_certificate,
    standard_webhook_signature,
    verify_standard_webhook,
)
from tests.fakes.http_receiver import http_receiver as http_receiver  # fixture
from tests.fakes.http_receiver import https_receiver as https_receiver  # fixture
from tests.fakes.tls_server import ClosedPort

from .clients import client_context


def test_records_requests_and_plays_the_script_then_the_default(
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.script(Answer(500), Answer(503, b"busy"))
    with httpx.Client(base_url=http_receiver.url, timeout=10) as client:
        statuses = [
            client.post("/hook?x=1", json={"n": n}, headers={"X-Test": str(n)}).status_code
            for n in range(3)
        ]
    assert statuses == [500, 503, 200]
    requests = http_receiver.wait_for_requests(3)
    assert [(r.method, r.path, r.json()) for r in requests] == [
        ("POST", "/hook?x=1", {"n": 0}),
        ("POST", "/hook?x=1", {"n": 1}),
        ("POST", "/hook?x=1", {"n": 2}),
    ]
    assert requests[1].headers["x-test"] == "1"
    assert requests[0].headers["content-type"] == "application/json"
    assert not requests[0].tls


def test_chunked_bodies_are_decoded(http_receiver: HttpReceiver) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    response = httpx.post(http_receiver.url, content=parts(), timeout=10)
    assert response.status_code == 200
    [request] = http_receiver.requests
    assert request.headers["transfer-encoding"] == "chunked" and request.json() == {"a": 1}


def test_routes_serve_files_with_their_type(http_receiver: HttpReceiver) -> None:
    url = http_receiver.serve_bytes("/ca.crl", b"\x30\x03\x02\x01\x01", "application/pkix-crl")
    response = httpx.get(url, timeout=10)
    assert response.content == b"\x30\x03\x02\x01\x01"
    assert response.headers["content-type"] == "application/pkix-crl"
    assert httpx.get(f"{http_receiver.url}/other", timeout=10).status_code == 200  # default


def test_https_serves_its_certificate(https_receiver: HttpReceiver) -> None:
    assert https_receiver.url.startswith("https://127.0.0.1:")
    with httpx.Client(verify=client_context(), timeout=10) as client:
        response = client.post(f"{https_receiver.url}/hook", content=b"hi")
        assert response.status_code == 200
    [request] = https_receiver.requests
    assert request.body == b"hi" and request.tls
    with (
        socket.create_connection(("127.0.0.1", https_receiver.port), timeout=10) as raw,
        client_context().wrap_socket(raw) as tls,
    ):
        assert tls.getpeercert(binary_form=True) == http_certificate().chain_der[0]
    with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port: a failed handshake
        httpx.get(https_receiver.url.replace("https", "http"), timeout=5)
    assert len(https_receiver.requests) == 1


def test_delay_and_hang_time_out_the_client(http_receiver: HttpReceiver) -> None:
    http_receiver.script(Answer(delay=0.3), Answer(hang=True))
    started = time.monotonic()
    assert httpx.get(http_receiver.url, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(http_receiver.url, timeout=0.3)


def test_drop_raw_and_stream(http_receiver: HttpReceiver) -> None:
    http_receiver.script(
        Answer(drop=True), Answer(raw=b"garbage\r\n\r\n"), Answer(body=b"x" * 200_000, stream=True)
    )
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(http_receiver.url, timeout=5)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(http_receiver.url, timeout=5)
    response = httpx.get(http_receiver.url, timeout=5)
    assert "content-length" not in response.headers and len(response.content) == 200_000


def test_close_is_prompt_with_idle_and_hanging_clients() -> None:
    receiver = HttpReceiver(default=Answer(hang=True)).start()
    idle = socket.create_connection(("127.0.0.1", receiver.port), timeout=5)
    hanging = socket.create_connection(("127.0.0.1", receiver.port), timeout=5)
    hanging.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    receiver.wait_for_requests(1)
    started = time.monotonic()
    receiver.close()
    assert time.monotonic() - started < 2
    idle.close()
    hanging.close()


def test_closed_port_refuses_httpx() -> None:
    with ClosedPort() as port, pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port.port}/", timeout=5)


# -- Standard Webhooks --------------------------------------------------------------------------

# The test vector the Standard Webhooks reference libraries publish.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def vector_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    return {**headers, **overrides}


def test_signature_reproduces_the_published_vector() -> None:
    signature = standard_webhook_signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    assert signature == VECTOR_SIGNATURE
    verify_standard_webhook(VECTOR_SECRET, vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_one_matching_signature_among_several_is_enough() -> None:
    several = f"v1,{base64.b64encode(b'x' * 32).decode()} {VECTOR_SIGNATURE}"
    headers = vector_headers(**{"webhook-signature": several})
    verify_standard_webhook(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP + 299)


@pytest.mark.parametrize(
    ("headers", "body", "now", "error"),
    [
        (vector_headers(), VECTOR_BODY + b" ", VECTOR_TIMESTAMP, "no v1 signature matches"),
        (
            vector_headers(**{"webhook-id": "msg_other"}),
            VECTOR_BODY,
            VECTOR_TIMESTAMP,
            "no v1 signature",
        ),
        (vector_headers(), VECTOR_BODY, VECTOR_TIMESTAMP + 301, "too far"),
        (vector_headers(), VECTOR_BODY, VECTOR_TIMESTAMP - 301, "too far"),
        (vector_headers(**{"webhook-timestamp": "soon"}), VECTOR_BODY, 0, "not an integer"),
        (
            {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TIMESTAMP)},
            VECTOR_BODY,
            VECTOR_TIMESTAMP,
            "missing header.*webhook-signature",
        ),
        (
            vector_headers(**{"webhook-signature": VECTOR_SIGNATURE.replace("v1,", "v2,")}),
            VECTOR_BODY,
            VECTOR_TIMESTAMP,
            "no v1 signature",
        ),
    ],
)
def test_refuses_what_a_receiver_must_refuse(
    headers: dict[str, str], body: bytes, now: int, error: str
) -> None:
    with pytest.raises(WebhookSignatureError, match=error):
        verify_standard_webhook(VECTOR_SECRET, headers, body, now=now)


def test_wrong_secret_is_refused() -> None:
    other = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()
    with pytest.raises(WebhookSignatureError):
        verify_standard_webhook(other, vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP)
