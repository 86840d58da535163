"""The shipped Prometheus rules and Grafana dashboard: well-formed, complete, and built only
on metrics dstrack exports (checked by promtool when it is installed; CI installs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine

from tracking.metrics import MetricsCollector

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dstrack.json"
METRIC = re.compile(r"\b(dstrack_[a-z0-9_]+)")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


@pytest.fixture
def exported(engine: Engine) -> set[str]:
    """The sample names the app's /metrics can carry (from its own TYPE lines)."""
    text = b"".join(MetricsCollector(engine).exposition().chunks()).decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.update(name + suffix for suffix in SUFFIXES[kind])
    return names


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing (.ci/run installs the Debian package prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


# --- alerting rules -------------------------------------------------------------------------


def test_every_rule_is_complete() -> None:
    found = rules()
    assert len(found) >= 8
    for rule in found:
        assert {"alert", "expr", "for"} <= rule.keys(), rule
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule
        assert rule["annotations"]["summary"].strip(), rule
    names = {rule["alert"] for rule in found}
    assert len(names) == len(found)


def test_rules_use_only_exported_metrics(exported: set[str]) -> None:
    used = set()
    for rule in rules():
        names = set(METRIC.findall(rule["expr"]))
        assert names or re.search(r"\bup\{", rule["expr"]), rule["expr"]
        used |= names
    assert used <= exported, used - exported
    assert {
        "dstrack_certificate_not_after_timestamp_seconds",
        "dstrack_certificate_chain_trusted",
        "dstrack_certificate_hostname_matches",
        "dstrack_domain_expiry_timestamp_seconds",
        "dstrack_device_update_failing",
    } <= used


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    tool = promtool()
    for command in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        done = subprocess.run([tool, *command], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


# --- the dashboard --------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries() -> list[str]:
    return [t["expr"] for panel in dashboard()["panels"] for t in panel["targets"]]


def test_the_dashboard_has_a_datasource_variable_every_panel_uses() -> None:
    board = dashboard()
    [variable] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = "${" + variable["name"] + "}"
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == reference, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == reference, panel["title"]
    titles = {panel["title"] for panel in board["panels"]}
    assert {
        "Certificates by days left",
        "Soonest certificate expiries",
        "Domains expiring within 30 days",
        "Untrusted chains",
        "Host name mismatches",
        "Failing updates",
        "Update rate by outcome",
        "Update duration p50 / p95",
    } <= titles
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])


def test_dashboard_queries_use_only_exported_metrics(exported: set[str]) -> None:
    for expr in queries():
        names = set(METRIC.findall(expr))
        assert names, expr
        assert names <= exported, (expr, names - exported)


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each query as a recording rule (Grafana's $__rate_interval as 5m): promtool parses it."""
    tool = promtool()
    records = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    done = subprocess.run(
        [tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
