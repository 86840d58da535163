"""The webhook receiver README.md shows verifies what dstrack sends, and refuses a forgery."""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import replace
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.tracking.alerts.test_notifiers import NOTICE
from tracking.core import clock
from tracking.core.alert_rules import ChannelKind
from tracking.core.notify_settings import NotifySettings
from tracking.core.settings import Settings
from tracking.probes.notify import ChannelTarget, NotifyError, RealNotifier, new_secret
from tracking.probes.resolver import resolver_for

README = Path(__file__).resolve().parents[3] / "README.md"


def _receiver_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (code,) = [b for b in blocks if "WebhookVerificationError" in b]
    return code


def test_the_readme_receiver_accepts_dstrack_and_refuses_a_forgery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = new_secret()
    code = _receiver_code().replace('SECRET = "whsec_..."', f'SECRET = "{secret}"')
    code, last = code.rsplit("\n", 2)[0], code.rsplit("\n", 2)[1]
    assert last.startswith("HTTPServer(")
    namespace: dict[str, Any] = {"__name__": "receiver"}
    exec(compile(code, "README receiver", "exec"), namespace)
    server = HTTPServer(("127.0.0.1", 0), namespace["Receiver"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings(data_dir=tmp_path, allow_private_targets=True)
    notifier = RealNotifier(settings, NotifySettings(timeout_s=5), resolver_for(settings))
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        notice = replace(NOTICE, created_at=clock.now())
        channel = ChannelTarget(ChannelKind.WEBHOOK, "hook", url, secret)
        asyncio.run(notifier.send(channel, notice, "msg_readme", clock.now()))
        asyncio.run(notifier.send(channel, notice, "msg_readme", clock.now()))  # a repeat
        forged = ChannelTarget(ChannelKind.WEBHOOK, "hook", url, new_secret())
        with pytest.raises(NotifyError, match="HTTP 400"):
            asyncio.run(notifier.send(forged, notice, "msg_forged", clock.now()))
    finally:
        server.shutdown()
        server.server_close()
    assert capsys.readouterr().out == f"WARNING {NOTICE.message}\n"
