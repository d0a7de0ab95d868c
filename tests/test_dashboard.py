"""configs/grafana-dashboard.json: importable (a datasource variable, a recent schema), and its
queries use the metric names the supervisor's collector exports, all of them but the host's info,
so the dashboard and the collector never drift apart."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from shardrunner.cluster.supervisor.collector import FAMILIES

DASHBOARD = Path(__file__).resolve().parents[1] / "configs" / "grafana-dashboard.json"
NAME = re.compile(r"\bshardrunner_[a-z0-9_]+")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return [p for p in out if p["type"] != "row"]


def test_dashboard_when_imported_has_a_prometheus_datasource_variable_used_by_every_query() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_dashboard_queries_when_read_name_only_exported_families_and_every_one_of_them() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in panels(dashboard) for t in p["targets"]]
    exprs.append(dashboard["templating"]["list"][1]["query"]["query"])
    used = {name for e in exprs for name in NAME.findall(e)}
    assert used - set(FAMILIES) == set(), "names the collector does not export"
    assert set(FAMILIES) - used == {"shardrunner_host_info"}, "families no panel shows"
