"""One budget for every retrieval a user asks for, kept in the database (several API workers).

Forced updates, devices created with a host or a domain, edits that retrieve again: each takes
from ``DSTRACK_RETRIEVALS_PER_10_MIN``. A PEM is decoded locally and takes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.api import helpers, queries
from tests.conftest import World, api_client, services_with
from tests.fakes import pki
from tests.security.support import make_user
from tests.support.clock import Clock
from tracking.core.clock import use_clock
from tracking.core.errors import ErrorCode, ValidationError
from tracking.core.settings import Settings
from tracking.manage import access
from tracking.manage.budget import take_retrievals
from tracking.refresh.services import Services

LIMIT = 3
FORCE_UPDATE = """
mutation($ids: [ID!]!) { forceUpdate(ids: $ids) { results { errors { code } } } }"""


@pytest.fixture
def clock() -> Iterator[Clock]:
    frozen = Clock(pki.NOW)
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def limited(services: Services) -> Services:
    return services_with(services, retrievals_per_10_min=LIMIT)


def _refused(body: dict[str, Any]) -> bool:
    errors = body.get("errors") or (body.get("data") or {}).get("createDevice", {}).get("errors")
    return any(
        (e.get("extensions") or {}).get("code") == "RATE_LIMITED" or e.get("code") == "RATE_LIMITED"
        for e in errors or []
    )


async def test_creations_edits_and_forced_updates_share_one_budget(
    limited: Services, world: World, clock: Clock
) -> None:
    async with api_client(limited) as admin:
        org = await helpers.organization(admin)
        user = await make_user(admin, "tech")
        # 1: a device created with a host.
        device = await helpers.ssl_device(user, org, world.host("good.test"))
        # A PEM is decoded locally: free, however many.
        for index in range(5):
            pem = pki.test_ca().leaf(f"pem{index}.test").pem
            await helpers.ssl_device(user, org, pem)
        # 2: Save & Check. 3: a forced update.
        saved = await user.ok(queries.UPDATE_DEVICE, id=device["id"], input={}, updateDetails=True)
        assert saved["updateDevice"]["errors"] == []
        assert (await user.ok(FORCE_UPDATE, ids=[device["id"]]))["forceUpdate"]["results"][0][
            "errors"
        ] == []
        # The budget is spent: every path is refused, and nothing is created or retrieved.
        count = await helpers.device_count(user)
        created = await helpers.create_device(
            user, organizationId=org, category="SSL_CERTIFICATE", sslSource=world.host("good.test")
        )
        assert [e["code"] for e in created["errors"]] == ["RATE_LIMITED"]
        domain = await helpers.create_device(
            user, organizationId=org, category="DOMAIN", domain="budget.test"
        )
        assert [e["code"] for e in domain["errors"]] == ["RATE_LIMITED"]
        edited = await user.ok(queries.UPDATE_DEVICE, id=device["id"], input={}, updateDetails=True)
        assert [e["code"] for e in edited["updateDevice"]["errors"]] == ["RATE_LIMITED"]
        assert _refused(await user.execute(FORCE_UPDATE, ids=[device["id"]]))
        assert await helpers.device_count(user) == count
        # The budget refills with time: one retrieval every 10 / LIMIT minutes.
        clock.advance(timedelta(minutes=10) / LIMIT)
        assert (await user.ok(FORCE_UPDATE, ids=[device["id"]]))["forceUpdate"]["results"][0][
            "errors"
        ] == []
        assert _refused(await user.execute(FORCE_UPDATE, ids=[device["id"]]))


async def test_the_budget_holds_across_api_workers(
    limited: Services, world: World, clock: Clock
) -> None:
    """Two apps over one database, as two ``dstrack serve`` workers: one budget."""
    async with api_client(limited) as first, api_client(limited) as second:
        org = await helpers.organization(first)
        device = await helpers.ssl_device(first, org, world.host("good.test"))  # admin's 1st
        for _ in range(2):  # the 2nd and 3rd, through the other worker
            assert (await second.ok(FORCE_UPDATE, ids=[device["id"]]))["forceUpdate"]
        assert _refused(await first.execute(FORCE_UPDATE, ids=[device["id"]]))
        assert _refused(await second.execute(FORCE_UPDATE, ids=[device["id"]]))


def test_concurrent_takers_never_spend_more_than_the_budget(engine: Engine) -> None:
    admin = access.ensure_admin_user(engine)
    assert admin.id is not None
    granted: list[int] = []
    refused: list[ErrorCode] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(5):
            try:
                take_retrievals(engine, user_id=admin.id or 0, count=1, limit=20)
            except ValidationError as error:
                with lock:
                    refused.append(error.code)
            else:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 40 asked, 20 allowed (the refill over the test's second is far below one retrieval).
    assert len(granted) == 20
    assert set(refused) == {ErrorCode.RATE_LIMITED} and len(refused) == 20


def test_a_request_larger_than_the_budget_is_refused_whole(engine: Engine) -> None:
    admin = access.ensure_admin_user(engine)
    with pytest.raises(ValidationError) as refused:
        take_retrievals(engine, user_id=admin.id or 0, count=4, limit=3)
    assert refused.value.message == "Too many retrievals: at most 3 per 10 minutes."
    take_retrievals(engine, user_id=admin.id or 0, count=3, limit=3)  # nothing was spent


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5"])
def test_a_bad_budget_setting_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="DSTRACK_RETRIEVALS_PER_10_MIN"):
        Settings.from_env({"DSTRACK_RETRIEVALS_PER_10_MIN": value})


def test_the_budget_setting_is_read() -> None:
    assert Settings.from_env({}).retrievals_per_10_min == 500
    assert Settings.from_env({"DSTRACK_RETRIEVALS_PER_10_MIN": "42"}).retrievals_per_10_min == 42


async def test_the_message_says_when_to_try_again(
    limited: Services, world: World, clock: Clock
) -> None:
    async with api_client(limited) as admin:
        org = await helpers.organization(admin)
        device = await helpers.ssl_device(admin, org, world.host("good.test"))
        # The same device twice in one request is retrieved, and counted, once.
        await admin.ok(FORCE_UPDATE, ids=[device["id"], device["id"]])
        await admin.ok(FORCE_UPDATE, ids=[device["id"]])
        body = await admin.execute(FORCE_UPDATE, ids=[device["id"]])
    [error] = body["errors"]
    assert error["message"] == (
        "Too many retrievals: at most 3 per 10 minutes. Try again in 200 seconds."
    )
