"""DSTRACK_ADMIN_TOKEN: the configured token replaces the one configured before, at once in
several processes, and a token too short to be safe is refused."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import ApiToken, User
from models.db import create_engine
from tracking.core.errors import ValidationError
from tracking.manage import access

FIRST = "first-admin-token-0123456789"
SECOND = "second-admin-token-0123456789"


def _works(engine: Engine, token: str) -> bool:
    return access.authenticate(engine, token) is not None


def _admin_id(engine: Engine) -> int:
    admin = access.ensure_admin_user(engine)
    assert admin.id is not None
    return admin.id


def _tokens(engine: Engine) -> list[ApiToken]:
    with Session(engine) as session:
        return list(session.exec(select(ApiToken).order_by(col(ApiToken.id))).all())


def test_a_new_configured_token_replaces_the_previous_one(engine: Engine) -> None:
    access.ensure_admin_token(engine, FIRST)
    assert _works(engine, FIRST)

    access.ensure_admin_token(engine, SECOND)  # a restart with another DSTRACK_ADMIN_TOKEN
    assert _works(engine, SECOND)
    assert not _works(engine, FIRST)

    access.ensure_admin_token(engine, FIRST)  # the old one, configured again, stays revoked
    assert not _works(engine, FIRST)
    assert not _works(engine, SECOND)


def test_the_same_token_at_every_start_is_one_token(engine: Engine) -> None:
    for _ in range(3):
        access.ensure_admin_token(engine, FIRST)
    assert _works(engine, FIRST)
    [token] = _tokens(engine)
    assert token.from_environment and token.revoked_at is None


def test_tokens_made_by_hand_are_left_alone(engine: Engine) -> None:
    access.ensure_admin_token(engine, FIRST)
    created = access.issue_token(engine, user_id=_admin_id(engine))  # dstrack create-token
    access.ensure_admin_token(engine, SECOND)
    assert _works(engine, created)
    assert _works(engine, SECOND)
    assert not _works(engine, FIRST)


def test_a_token_stored_before_tokens_were_marked_is_replaced_after_one_start(
    engine: Engine,
) -> None:
    access.register_token(engine, user_id=_admin_id(engine), token=FIRST)  # as before 0005
    access.ensure_admin_token(engine, FIRST)  # the first start after the upgrade marks it
    access.ensure_admin_token(engine, SECOND)
    assert not _works(engine, FIRST)
    assert _works(engine, SECOND)


@pytest.mark.parametrize(
    "token",
    ["", "x", "fifteen-chars-x", " padded-admin-token-0123 ", "tab\tinside-the-token", "y" * 201],
)
def test_an_unsafe_token_is_refused_and_changes_nothing(engine: Engine, token: str) -> None:
    access.ensure_admin_token(engine, FIRST)
    with pytest.raises(ValidationError) as refused:
        access.ensure_admin_token(engine, token)
    assert "DSTRACK_ADMIN_TOKEN" in refused.value.message
    assert token.strip() == "" or token.strip() not in refused.value.message  # never echoed
    assert _works(engine, FIRST)
    assert len(_tokens(engine)) == 1


def test_sixteen_characters_are_enough(engine: Engine) -> None:
    access.ensure_admin_token(engine, "sixteen-chars-ok")
    assert _works(engine, "sixteen-chars-ok")


def _start_worker(url: str, token: str, barrier: Barrier) -> None:
    """What each API worker does at start-up, as many at the same instant as possible."""
    engine = create_engine(url)
    try:
        barrier.wait(timeout=60)
        access.ensure_admin_token(engine, token)
    finally:
        engine.dispose()


def test_workers_starting_at_once_with_a_new_token_agree(engine: Engine) -> None:
    """Processes (not threads: each with its own connection pool, as uvicorn's workers) start
    together with a new token: none fails, the old token is revoked, the new one is one row."""
    access.ensure_admin_token(engine, FIRST)
    created = access.issue_token(engine, user_id=_admin_id(engine))
    url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    for _ in range(2):  # the second round finds the rows the first one made
        barrier = context.Barrier(6)
        workers = [
            context.Process(target=_start_worker, args=(url, SECOND, barrier)) for _ in range(6)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert [w.exitcode for w in workers] == [0] * 6
    assert _works(engine, SECOND) and _works(engine, created)
    assert not _works(engine, FIRST)
    environment = [t for t in _tokens(engine) if t.from_environment]
    assert [t.revoked_at is None for t in environment] == [False, True]
    with Session(engine) as session:
        assert len(session.exec(select(User)).all()) == 1
