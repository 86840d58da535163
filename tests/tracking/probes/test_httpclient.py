"""The guarded HTTP client (RDAP's, and any other fetch's) against a real local HTTP server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fakes.rdap_server import FIXTURES, FakeRdapServer, RdapFault
from tracking.core.errors import ErrorCode
from tracking.core.settings import Settings
from tracking.probes.httpclient import FetchError, FetchFailureKind, guarded_http_client

TIMEOUT = 1.0
GUARDED = Settings(allow_private_targets=False, probe_timeout_s=TIMEOUT)
MiB = 1024 * 1024


@pytest.fixture
def server() -> Iterator[FakeRdapServer]:
    with FakeRdapServer(slow_seconds=3.0) as fake:
        fake.add_domain("google.com", FIXTURES / "rdap" / "domains" / "verisign__google.com.json")
        yield fake


def domain_url(server: FakeRdapServer) -> str:
    return f"{server.url}/rdap.verisign.com/com/v1/domain/google.com"


async def fetch_failure(server: FakeRdapServer, url: str, **kwargs: int) -> FetchError:
    async with guarded_http_client(GUARDED, trusted=[server.url]) as client:
        with pytest.raises(FetchError) as caught:
            await client.fetch(url, max_bytes=kwargs.get("max_bytes", MiB))
    return caught.value


async def test_a_trusted_host_may_be_private(server: FakeRdapServer) -> None:
    async with guarded_http_client(GUARDED, trusted=[server.url]) as client:
        answer = await client.fetch(domain_url(server), max_bytes=MiB)
    assert answer.status == 200
    assert b"2138514_DOMAIN_COM-VRSN" in answer.body
    assert answer.url == domain_url(server)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_any_other_private_host_is_refused_before_connecting(
    server: FakeRdapServer, host: str
) -> None:
    async with guarded_http_client(GUARDED, trusted=["rdap.example"]) as client:
        with pytest.raises(FetchError) as caught:
            await client.fetch(f"http://{host}:{server.port}/dns.json", max_bytes=MiB)
    assert caught.value.kind == FetchFailureKind.PRIVATE_ADDRESS
    assert caught.value.code is ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert caught.value.message.startswith(f"refused to connect to {host}: ")
    assert server.requests == []


async def test_trust_can_be_given_later_by_host_name(server: FakeRdapServer) -> None:
    async with guarded_http_client(GUARDED) as client:
        client.trust("127.0.0.1")
        answer = await client.fetch(f"{server.url}/dns.json", max_bytes=4 * MiB)
    assert answer.status == 200


async def test_redirects_are_not_followed(server: FakeRdapServer) -> None:
    server.set_fault("google.com", RdapFault.REDIRECT_ELSEWHERE)
    async with guarded_http_client(GUARDED, trusted=[server.url]) as client:
        answer = await client.fetch(domain_url(server), max_bytes=MiB)
    assert answer.status == 302
    assert answer.location == f"http://localhost:{server.port}/redirected/google.com"
    assert not any(path.startswith("/redirected/") for path in server.requests)


@pytest.mark.parametrize("fault", [RdapFault.HUGE, RdapFault.HUGE_STREAM])
async def test_the_body_is_bounded(server: FakeRdapServer, fault: RdapFault) -> None:
    server.set_fault("google.com", fault)  # 3 MiB, declared or not
    error = await fetch_failure(server, domain_url(server), max_bytes=2 * MiB)
    assert (error.kind, error.message) == (FetchFailureKind.TOO_LARGE, "answer larger than 2 MiB")
    assert error.code is ErrorCode.LOOKUP_FAILED


async def test_a_small_bound_cuts_a_normal_answer(server: FakeRdapServer) -> None:
    error = await fetch_failure(server, domain_url(server), max_bytes=1024)
    assert error.message == "answer larger than 1 KiB"


async def test_one_deadline_per_exchange(server: FakeRdapServer) -> None:
    server.set_fault("google.com", RdapFault.SLOW)
    started = time.monotonic()
    error = await fetch_failure(server, domain_url(server))
    assert (error.kind, error.message) == (FetchFailureKind.TIMEOUT, "timed out after 1 s")
    assert time.monotonic() - started < TIMEOUT + 1.0


async def test_nobody_listening(server: FakeRdapServer) -> None:
    port = server.port
    server.close()
    error = await fetch_failure(server, f"http://127.0.0.1:{port}/dns.json")
    assert error.kind == FetchFailureKind.CONNECTION
    assert error.message.startswith(f"cannot connect to 127.0.0.1:{port} (127.0.0.1:{port}: ")


@pytest.mark.parametrize("fault", [RdapFault.HUGE, RdapFault.HUGE_STREAM])
async def test_a_cut_answer_keeps_its_status_and_its_first_bytes(
    server: FakeRdapServer, fault: RdapFault
) -> None:
    """For a caller that needs the status only (a webhook delivery): no failure, a bounded read."""
    server.set_fault("google.com", fault)
    async with guarded_http_client(GUARDED, trusted=[server.url]) as client:
        answer = await client.fetch(domain_url(server), max_bytes=64 * 1024, cut=True)
    assert answer.status == 200
    assert answer.body == b" " * (64 * 1024)


async def test_a_timeout_of_its_own(server: FakeRdapServer) -> None:
    server.set_fault("google.com", RdapFault.SLOW)
    started = time.monotonic()
    async with guarded_http_client(GUARDED, trusted=[server.url], timeout_s=0.3) as client:
        with pytest.raises(FetchError) as caught:
            await client.fetch(domain_url(server), max_bytes=MiB)
    assert caught.value.message == "timed out after 0.3 s"
    assert time.monotonic() - started < TIMEOUT
