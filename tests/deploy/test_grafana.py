"""deploy/grafana: the committed dashboards parse, follow Grafana's dashboard schema (what
provisioning needs: uid, title, schemaVersion, panels with a type, gridPos and the
provisioned datasource's uid) and show what deploy/README.md says each one shows."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.promql import DASHBOARDS, DEPLOY, dashboard, names_in, panels

PROVISIONING = DEPLOY / "grafana" / "provisioning"
EXPECTED = {"overview.json", "publisher.json", "data-quality.json", "pipeline.json"}


def datasource_uids() -> dict[str, str]:
    out = {}
    for path in (PROVISIONING / "datasources").glob("*.yml"):
        for ds in yaml.safe_load(path.read_text())["datasources"]:
            out[ds["uid"]] = ds["type"]
    return out


def exprs(d: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(d) for t in p.get("targets", [])]


def by_name(name: str) -> dict[str, Any]:
    return dashboard(DEPLOY / "grafana" / "dashboards" / name)


def test_the_four_dashboards_exist():
    assert {p.name for p in DASHBOARDS} == EXPECTED


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_schema(path):
    d = dashboard(path)
    sources = datasource_uids()
    assert 36 <= d["schemaVersion"] <= 41
    assert d["uid"].startswith("ordermon-") and len(d["uid"]) <= 40 and d["title"]
    assert d.get("id") is None  # provisioned dashboards get their id from Grafana
    ps = panels(d)
    assert len(ps) >= 6
    ids = [p["id"] for p in ps]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells: set[tuple[int, int]] = set()
    for p in ps:
        g = p["gridPos"]
        assert g["w"] >= 1 and g["h"] >= 1 and g["x"] >= 0 and g["y"] >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, f"{p['title']}: wider than the 24-column grid"
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}  # fmt: skip
        assert not (mine & cells), f"{p['title']} overlaps another panel"
        cells |= mine
        if p["type"] == "row":
            continue
        assert p["title"] and p["type"] in {"timeseries", "stat", "table", "bargauge",
                                            "gauge", "text"}, p["title"]  # fmt: skip
        assert sources.get(p["datasource"]["uid"]) == p["datasource"]["type"] == "prometheus"
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == p["datasource"]["uid"]
            assert t["expr"].strip(), p["title"]


def test_provisioning_points_at_the_mounted_dashboards():
    prov = yaml.safe_load((PROVISIONING / "dashboards" / "ordermon.yml").read_text())
    path = prov["providers"][0]["options"]["path"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_publisher_drill_down_has_the_publisher_variable():
    d = by_name("publisher.json")
    var = next(v for v in d["templating"]["list"] if v["name"] == "publisher")
    assert var["type"] == "query"
    assert var["query"]["query"] == "label_values(ordermon_publisher_orders, publisher_id)"
    per_pub = [e for e in exprs(d) if 'publisher_id="$publisher"' in e]
    assert len(per_pub) >= 8, per_pub
    # the overview's top-publishers panel links into it
    top = next(p for p in panels(by_name("overview.json")) if "anomaly score" in p["title"])
    links = top["fieldConfig"]["defaults"]["links"]
    assert any(f"/d/{d['uid']}/" in link["url"] and "var-publisher=" in link["url"]
               for link in links)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("overview.json", ["ordermon_invalidations_total", "ordermon_alerts_firing",
                           "ordermon_publisher_anomaly_score", "ordermon_events_total"]),
        ("data-quality.json", ["ordermon_rejections_total", "ordermon_duplicates_total",
                               "ordermon_late_events_total", "ordermon_future_events_total",
                               "ordermon_dead_letters_total"]),
        ("pipeline.json", ["ordermon_consumer_lag_messages", "ordermon_watermark_delay_seconds",
                           "ordermon_processing_latency_seconds_bucket",
                           "ordermon_notifications_total"]),
    ],
)  # fmt: skip
def test_dashboards_show_what_the_readme_says(name, needles):
    used = set().union(*(names_in(e) for e in exprs(by_name(name))))
    assert set(needles) <= used, set(needles) - used


def test_latency_panels_use_histogram_quantile():
    pipe = exprs(by_name("pipeline.json"))
    p99 = [e for e in pipe if "ordermon_processing_latency_seconds_bucket" in e]
    assert any(e.startswith("histogram_quantile(0.99,") and "by (le" in e for e in p99), p99
