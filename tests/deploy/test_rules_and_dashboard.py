"""promtool checks the shipped rules; the dashboard is valid Grafana JSON whose every query parses.

The dashboard's queries (Grafana variables substituted as "All" would) and the alerts' expressions
with their thresholds turned into ``bool`` comparisons are written as recording rules to a scratch
file that promtool checks, so each one is parsed by Prometheus' own PromQL parser. Every metric they
name must be one the service exports (service/metrics.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import (
    DASHBOARD_FILE,
    ROOT,
    RULES_FILE,
    dashboard_queries,
    executable,
    iter_panels,
    rule_entries,
    without_threshold,
)

METRIC = re.compile(r"\b(relevance_[a-z_]+)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promtool_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([executable("promtool"), "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60)


def test_promtool_checks_the_shipped_rules_file():
    proc = promtool_check(RULES_FILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_alerts_cover_what_sres_are_paged_for():
    alerts = {r["alert"]: r for r in rule_entries() if "alert" in r}
    assert set(alerts) >= {"RelevanceP99LatencyOverBudget", "RelevanceShedding", "RelevanceServerErrors",
                           "RelevanceShadowDisagreementSpike", "RelevanceNoReadyPods"}
    assert alerts["RelevanceP99LatencyOverBudget"]["for"] == "5m"
    assert "histogram_quantile(0.99" in alerts["RelevanceP99LatencyOverBudget"]["expr"]
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name


def test_promtool_rejects_a_broken_rule(tmp_path):
    """The check is real: a PromQL syntax error fails it."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum(rate(x[5m])"}]}]}))
    assert promtool_check(bad).returncode != 0


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def test_dashboard_is_importable_grafana_json(dashboard):
    assert dashboard["uid"] == "relevance-service" and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = list(iter_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_shows_what_the_issue_asks_for(dashboard):
    text = json.dumps(dashboard)
    for needle in ("histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,",
                   "relevance_shed_total", "relevance_batch_size_pairs", "relevance_queue_depth_pairs",
                   "relevance_queue_wait_seconds", "relevance_inference_duration_seconds",
                   "relevance_cache_hits_total", "relevance_shadow_compared_pairs_total",
                   "relevance_shadow_dropped_total", "relevance_model_info", 'status=~\\"[45]..\\"'):
        assert needle in text, needle
    titles = " | ".join(p["title"] for p in iter_panels(dashboard))
    assert "by variant" in titles and "Model version per variant" in titles


def test_every_dashboard_and_alert_expression_parses(dashboard, tmp_path):
    rules = [{"record": f"check:dashboard_{i}", "expr": expr}
             for i, (_, expr) in enumerate(dashboard_queries(dashboard))]
    rules += [{"record": f"check:alert_{i}", "expr": without_threshold(r["expr"])}
              for i, r in enumerate(rule_entries())]
    path = tmp_path / "expressions.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    proc = promtool_check(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


def test_without_threshold_keeps_every_series():
    assert without_threshold("rate(x[5m]) > 0.1") == "rate(x[5m]) > bool 0.1"
    assert without_threshold('a{status!="503"} / b > 0.2 and c > 1') == 'a{status!="503"} / b > bool 0.2 and c > bool 1'
    assert without_threshold("(x or on() vector(0)) < 1") == "(x or on() vector(0)) < bool 1"


def test_queries_use_only_metrics_the_service_exports(dashboard):
    metrics_mod = pytest.importorskip("service.metrics", reason="service/metrics.py is not there yet")
    exported = metrics_mod.ServiceMetrics().render().decode()
    families = set(re.findall(r"^# TYPE (\S+) (\S+)", exported, flags=re.MULTILINE))
    names = set()
    for family, kind in families:
        if kind == "histogram":
            names |= {family + s for s in HISTOGRAM_SUFFIXES}
        elif kind == "counter":
            names |= {family, family.removesuffix("_total") + "_total"}
        else:
            names.add(family)
    used = set(METRIC.findall(json.dumps(dashboard)))
    used |= {m for r in rule_entries() for m in METRIC.findall(r["expr"])}
    assert used, "no relevance_ metric found in the queries"
    assert sorted(used - names) == [], f"queries name metrics the service does not export; it has {sorted(names)}"


def test_operations_doc_shows_every_dashboard_query_and_alert(dashboard):
    """docs/operations.md lists each panel query verbatim and has a runbook section per alert."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            assert "`" + target["expr"].replace("|", "\\|") + "`" in doc, f"{panel['title']}: query not in the doc"
    for rule in rule_entries():
        if "alert" in rule:
            assert f"### {rule['alert']}" in doc
            assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{rule['alert'].lower()}"
