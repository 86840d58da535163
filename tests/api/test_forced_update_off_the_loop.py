"""A forced update writes its batches in a thread: the API's other requests are answered
meanwhile, not after the write (a scheduled refresh, alone on its loop, writes in place)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.api import helpers
from tests.conftest import GraphQLClient, World
from tracking.refresh import pipeline
from tracking.refresh.services import Services

FORCE_UPDATE = """
mutation($ids: [ID!]!) { forceUpdate(ids: $ids) { results { errors { code } } } }"""
SLOW_WRITE_S = 1.5


async def test_requests_are_answered_while_a_forced_update_writes(
    api: GraphQLClient, world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await helpers.organization(api)
    ids = [(await helpers.ssl_device(api, org, world.host("good.test")))["id"] for _ in range(3)]
    real_save = pipeline.save
    writing = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_save(*args: Any, **kwargs: Any) -> Any:
        loop.call_soon_threadsafe(writing.set)
        time.sleep(SLOW_WRITE_S)  # a write that holds its thread, as a busy database would
        return real_save(*args, **kwargs)

    monkeypatch.setattr(pipeline, "save", slow_save)
    update = asyncio.create_task(api.ok(FORCE_UPDATE, ids=ids))
    await asyncio.wait_for(writing.wait(), timeout=30)
    started = time.perf_counter()
    health = await api.http.get("/healthz")
    answered_in = time.perf_counter() - started
    assert health.status_code == 200
    assert answered_in < SLOW_WRITE_S / 2, answered_in
    assert not update.done()  # the write was still going on
    results = (await update)["forceUpdate"]["results"]
    assert [r["errors"] for r in results] == [[], [], []]
