"""What deploy/ asks of ordermon's metrics: the PromQL expressions of the Prometheus rules and
of the Grafana dashboards, and the ``ordermon_*`` metric names they use.

Names are the identifiers ``ordermon_[a-z0-9_]+`` of each expression (recording-rule names
are ``ordermon:…`` and never match); a histogram's ``_bucket``/``_sum``/``_count`` series
count as its base name where the exposition declares a histogram of that name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "ordermon.rules.yml"
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))

NAME = re.compile(r"(?<![a-zA-Z0-9_:])ordermon_[a-z0-9_]+")
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


def names_in(expr: str) -> set[str]:
    """``ordermon_*`` metric names in one PromQL expression (label values and strings are
    skipped: a name inside quotes is not a metric)."""
    no_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(NAME.findall(no_strings))


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def alerting_rules() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def rule_exprs() -> Iterator[tuple[str, str]]:
    for r in rules():
        yield r.get("alert") or r["record"], r["expr"]


def _panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))  # collapsed rows hold their panels


def dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(d: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_panels(d.get("panels", [])))


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    """(where, expr) of every panel target and every query variable."""
    for path in DASHBOARDS:
        d = dashboard(path)
        for p in panels(d):
            for t in p.get("targets", []):
                yield f"{path.name}: {p['title']} {t.get('refId')}", t["expr"]
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                q = v["query"]
                yield f"{path.name}: ${v['name']}", q["query"] if isinstance(q, dict) else q


def used_names() -> dict[str, list[str]]:
    """Every ``ordermon_*`` name used by a rule or a dashboard -> where."""
    out: dict[str, list[str]] = {}
    for where, expr in [*(("rule " + n, e) for n, e in rule_exprs()), *dashboard_exprs()]:
        for name in names_in(expr):
            out.setdefault(name, []).append(where)
    return out


def exposed_names(metrics_text: str) -> set[str]:
    """Names a ``/metrics`` text exposition offers to PromQL: every sample name, and every
    declared family (a family announced without samples still exists: e.g. per-publisher
    gauges on a worker that does not hold detection), with a counter's ``_total`` and a
    histogram's ``_bucket``/``_sum``/``_count``."""
    from prometheus_client.parser import text_string_to_metric_families

    out: set[str] = set()
    for fam in text_string_to_metric_families(metrics_text):
        out.add(fam.name)
        if fam.type == "counter":
            out.add(fam.name + "_total")
        if fam.type == "histogram":
            out.update(fam.name + s for s in HIST_SUFFIXES)
        out.update(s.name for s in fam.samples)
    return out


def missing_from(used: Iterable[str], known: Iterable[str]) -> set[str]:
    """``used`` names not in ``known`` (a base histogram name in ``known`` covers its
    ``_bucket``/``_sum``/``_count``)."""
    known = set(known)

    def ok(name: str) -> bool:
        if name in known:
            return True
        return any(name.endswith(s) and name[: -len(s)] in known for s in HIST_SUFFIXES)

    return {n for n in used if not ok(n)}
