"""A delivery worker killed with SIGKILL mid-send loses nothing, and what it had marked SENT is
never sent again: a real ``dstrack alerts run`` process, a webhook receiver holding a request."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.tracking.alerts.support import (
    DAY,
    alerts_of,
    create,
    deliveries,
    http_receiver,
    notes,
    pem_expiring,
)
from tracking.core import clock
from tracking.core.alert_rules import ChannelKind
from tracking.manage import alerts as manage
from tracking.manage.access import Viewer
from tracking.refresh.services import Services

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 2  # DSTRACK_NOTIFY_TIMEOUT_S of the runs: a claim is held for 2 * 2 + 5 s


def _run(engine: Engine, tmp_path: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DSTRACK_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "DSTRACK_DATA_DIR": str(tmp_path / "data"),
        "DSTRACK_ALLOW_PRIVATE_TARGETS": "1",
        "DSTRACK_NOTIFY_TIMEOUT_S": str(TIMEOUT_S),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "alerts", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_killed_run_loses_nothing_and_resends_nothing_sent(
    services: Services, viewer: Viewer, org: int, tmp_path: Path
) -> None:
    with http_receiver() as slow, http_receiver() as fast:
        ids = []
        for name, receiver in (("slow", slow), ("fast", fast)):
            channel, _ = asyncio.run(
                manage.create_channel(
                    services,
                    viewer=viewer,
                    new=manage.NewChannel(name, ChannelKind.WEBHOOK, org, url=receiver.url),
                )
            )
            ids.append(channel.id)
        manage.set_policy(
            services.engine, viewer=viewer, changes=manage.PolicyChanges(org, channel_ids=ids)
        )
        device = create(services, viewer, org, ssl_source=pem_expiring(clock.now() + 5 * DAY))
        slow.hold.clear()

        first = _run(services.engine, tmp_path)
        _wait_for(lambda: slow.arrived.is_set() or first.poll() is not None, "the request")
        assert first.poll() is None, first.communicate()[0]
        _wait_for(
            lambda: any(d.state == "SENT" for d in deliveries(services.engine)),
            "the other channel's delivery",
        )
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)  # also closes its pipe
        assert first.returncode == -signal.SIGKILL

        held = next(d for d in deliveries(services.engine) if d.state != "SENT")
        assert (held.state, held.attempts, held.claimed_by is not None) == ("PENDING", 0, True)
        claimed_until = held.claimed_until
        assert claimed_until is not None
        slow.hold.set()  # the receiver answers from now on
        _wait_for(
            lambda: clock.now() > claimed_until + timedelta(seconds=0.5),
            "the killed run's claim to run out",
        )
        second = _run(services.engine, tmp_path)
        output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    assert output.strip().splitlines()[-1] == "raised 0, sent 1, failed 0"

    rows = {d.channel_id: d for d in deliveries(services.engine)}
    assert [(rows[i].state, rows[i].attempts) for i in ids] == [("SENT", 1), ("SENT", 1)]
    slow_key, fast_key = rows[ids[0]].idempotency_key, rows[ids[1]].idempotency_key
    assert [r.headers["webhook-id"] for r in fast.requests] == [fast_key]  # never resent
    assert {r.headers["webhook-id"] for r in slow.requests} == {slow_key}  # same key again
    assert len(slow.requests) >= 1
    message = alerts_of(services.engine, device)[0].message
    sent_notes = [n for n in notes(services.engine, device) if n.startswith("Alert sent to")]
    assert sorted(sent_notes) == [
        f"Alert sent to fast: {message}",
        f"Alert sent to slow: {message}",
    ]


def test_alerts_run_prints_what_it_did_last(
    services: Services,
    viewer: Viewer,
    org: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.cli import main

    create(services, viewer, org, ssl_source=pem_expiring(clock.now() + 2 * DAY), name="soon")
    manage.set_policy(  # a channel nobody can reach: the delivery is retried later
        services.engine,
        viewer=viewer,
        changes=manage.PolicyChanges(
            org,
            channel_ids=[
                asyncio.run(
                    manage.create_channel(
                        services,
                        viewer=viewer,
                        new=manage.NewChannel(
                            "ops", ChannelKind.EMAIL, org, email_to=["ops@example.com"]
                        ),
                    )
                )[0].id
                or 0
            ],
        ),
    )
    monkeypatch.setenv("DSTRACK_DATABASE_URL", services.engine.url.render_as_string(False))
    monkeypatch.setenv("DSTRACK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DSTRACK_SMTP_URL", raising=False)
    assert main(["alerts", "run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "raised 1, sent 0, failed 0"
    assert lines[0].startswith("PENDING: ops: Certificate soon expires in ")
    assert lines[0].endswith("(e-mail is not configured: set DSTRACK_SMTP_URL)")
