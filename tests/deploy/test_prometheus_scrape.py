"""A real Prometheus scrapes a real `relevance serve` under a short load; every shipped query returns data.

The service runs with two primary variants (control and an A/B candidate), the shadow mirroring all
primary traffic, and the cache on. Prometheus (the Debian package's server) scrapes it every second
on loopback and evaluates the shipped rules file. A bounded load (a few seconds, a few client
threads) mixes A/B buckets (known, unknown, none), repeated pairs (cache hits), shadow calls, tight
deadlines and invalid bodies; half the queries are new, so the batcher and the model work throughout
(a histogram whose count stops moving makes rate() 0/0 = NaN, which is no data). Then every dashboard query (Grafana variables as "All") and every
alert expression (thresholds turned into ``bool`` comparisons, so the series stay) is evaluated
through Prometheus' HTTP API and must return at least one finite sample; every rule must evaluate
without error.
"""

from __future__ import annotations

import itertools
import json
import threading
import time

import httpx
import pytest
import yaml

from tests.deploy.support import (
    DASHBOARD_FILE,
    RULES_FILE,
    dashboard_queries,
    executable,
    finite_values,
    free_port,
    relevance_server,
    rule_entries,
    service_available,
    serving,
    tail,
    tiny_bundle_or_skip,
    without_threshold,
)

LOAD_SECONDS = 6.0
LOAD_THREADS = 3
MAX_REQUESTS = 1500  # per thread: the load is bounded in count as well as time
QUERIES = ["cordless drill", "white primer", "garden hose", "brass faucet", "steel hammer", "outdoor planter"]
TITLES = ["dewalt cordless drill kit", "behr white primer gallon", "ryobi garden hose pack", "moen brass faucet",
          "steel claw hammer", "black outdoor planter set", "kohler white sink", "delta valve kit"]


def services(n: int, offset: int) -> list[dict]:
    return [{"id": str(i), "title": TITLES[(offset + i) % len(TITLES)], "brand": "ryobi"} for i in range(n)]


def drive_load(base: str, stop_at: float, seed: int, counts: dict, lock: threading.Lock) -> None:
    """One client thread: a fixed rotation of request kinds until the time or count bound."""
    kinds = itertools.cycle(["control", "bucket_b", "unknown_bucket", "control", "shadow", "tight_deadline",
                             "bucket_b", "invalid", "control", "unknown_bucket"])
    with httpx.Client(base_url=base, timeout=10.0) as client:
        for i in range(MAX_REQUESTS):
            if time.monotonic() >= stop_at:
                break
            kind = next(kinds)
            # Half the requests repeat popular pairs (cache hits), half are new (misses: the batcher works).
            query = QUERIES[(i + seed) % len(QUERIES)]
            if i % 2 or kind == "tight_deadline":
                query = f"{query} {seed} {i}"
            body = {"query": query, "services": services(8, i % 3)}
            headers = {}
            path = "/relevance"
            if kind == "bucket_b":
                headers["X-AB-Bucket"] = "b"
            elif kind == "unknown_bucket":
                headers["X-AB-Bucket"] = "no-such-bucket"
            elif kind == "shadow":
                path = "/relevance/shadow"
            elif kind == "tight_deadline":
                headers["X-Deadline-Ms"] = "1"
                body["services"] = services(64, i)
            elif kind == "invalid":
                body = {"services": body["services"]}  # no query: 422
            try:
                status = client.post(path, json=body, headers=headers).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            with lock:
                counts[status] = counts.get(status, 0) + 1


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=10.0)

    def query(self, expr: str) -> list[dict]:
        r = self.client.get("/api/v1/query", params={"query": expr})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def wait_for(self, expr: str, timeout_s: float) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expr)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)


@pytest.fixture(scope="module")
def scraped(request, tmp_path_factory):
    """(Prometheus API, load outcome counts, service log) after the load, with the service still up."""
    service_available()
    bundle = tiny_bundle_or_skip(request)
    prometheus_bin = executable("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus-scrape")
    settings = dict(
        variants={"candidate": str(bundle)}, ab_buckets={"b": "candidate"}, shadow_sample_rate=1.0,
        intra_op_threads=1, default_deadline_ms=1000, log_level="warning",
    )
    with relevance_server(bundle, tmp, **settings) as (proc, base, service_log):
        port = base.rsplit(":", 1)[1]
        config = tmp / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES_FILE)],
            "scrape_configs": [{"job_name": "relevance", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
        }))
        prom_port = free_port()
        cmd = [prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
               f"--web.listen-address=127.0.0.1:{prom_port}", "--storage.tsdb.retention.time=1h",
               "--log.level=warn"]
        prom_log = tmp / "prometheus.log"
        prom_url = f"http://127.0.0.1:{prom_port}"
        with serving(cmd, f"{prom_url}/-/ready", env={"PATH": "/usr/bin:/bin"}, cwd=tmp, log=prom_log,
                     ready_timeout_s=60):
            prom = Prometheus(prom_url)
            assert prom.wait_for('up{job="relevance"} == 1', timeout_s=30), tail(prom_log)

            counts: dict = {}
            lock = threading.Lock()
            stop_at = time.monotonic() + LOAD_SECONDS
            threads = [threading.Thread(target=drive_load, args=(base, stop_at, s, counts, lock), daemon=True)
                       for s in range(LOAD_THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=LOAD_SECONDS + 30)
            # Let Prometheus scrape the final counters and evaluate the rules on them.
            time.sleep(3.0)
            yield prom, counts, service_log, tmp


def test_load_exercised_the_service(scraped):
    _, counts, service_log, _ = scraped
    assert counts.get(200, 0) > 50, f"{counts}\n{tail(service_log)}"
    assert counts.get(422, 0) > 0, counts
    assert set(counts) <= {200, 422, 503}, f"unexpected outcomes {counts}\n{tail(service_log)}"


def test_every_dashboard_query_returns_data(scraped):
    prom, _, _, tmp = scraped
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    empty, report = [], {}
    for title, expr in dashboard_queries(dashboard):
        result = prom.query(expr)
        report[title] = {"expr": expr, "result": result}
        if not finite_values(result):
            empty.append(f"{title}: {expr} -> {result}")
    (tmp / "dashboard-results.json").write_text(json.dumps(report, indent=1))
    assert empty == [], "dashboard queries without data:\n" + "\n".join(empty)


def test_every_alert_expression_returns_data(scraped):
    prom, _, _, _ = scraped
    empty = []
    for rule in rule_entries():
        expr = without_threshold(rule["expr"])
        result = prom.query(expr)
        if not finite_values(result):
            empty.append(f"{rule.get('alert') or rule.get('record')}: {expr} -> {result}")
    assert empty == [], "alert/recording expressions without data:\n" + "\n".join(empty)


def test_latency_quantiles_are_plausible(scraped):
    prom, _, _, _ = scraped
    p99 = finite_values(prom.query(
        'histogram_quantile(0.99, sum by (variant, le) (rate(relevance_request_duration_seconds_bucket'
        '{endpoint="/relevance"}[1m])))'))
    assert p99 and all(0 < v < 5 for v in p99), p99
    variants = {s["metric"]["variant"] for s in prom.query("relevance_model_info")}
    assert {"control", "candidate"} <= variants


def test_prometheus_evaluates_the_shipped_rules_without_errors(scraped):
    prom, _, _, _ = scraped
    body = prom.client.get("/api/v1/rules").json()
    rules = [r for g in body["data"]["groups"] for r in g["rules"]]
    assert len(rules) == len(rule_entries())
    unhealthy = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert unhealthy == []
    state = {r["name"]: r["state"] for r in rules if r["type"] == "alerting"}
    # A ready service without server errors: these two stay quiet.
    assert state["RelevanceNoReadyPods"] == "inactive"
    assert state["RelevanceServerErrors"] == "inactive"


def test_shedding_alert_goes_pending_when_the_load_is_shed(scraped):
    """The load sends 1 ms deadlines on purpose: the shedding alert's condition holds (pending, for: 5m)."""
    prom, counts, _, _ = scraped
    if not counts.get(503):
        pytest.skip(f"admission control shed nothing this run ({counts})")
    rules = [r for g in prom.client.get("/api/v1/rules").json()["data"]["groups"] for r in g["rules"]]
    shedding = next(r for r in rules if r["name"] == "RelevanceShedding")
    assert shedding["state"] in {"pending", "firing"}, shedding
