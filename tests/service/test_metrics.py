"""/metrics exposes every series the dashboards and alerts are written against."""

from __future__ import annotations

import asyncio

from tests.service.support import body, metric_value, running

# The contract with helm/dashboards and helm/rules: these names must not change.
METRIC_NAMES = [
    "relevance_request_duration_seconds",
    "relevance_queue_wait_seconds",
    "relevance_inference_duration_seconds",
    "relevance_tokenization_duration_seconds",
    "relevance_batch_size_pairs",
    "relevance_batch_tokens",
    "relevance_queue_depth_pairs",
    "relevance_in_flight_requests",
    "relevance_shed_total",
    "relevance_cache_hits_total",
    "relevance_cache_misses_total",
    "relevance_ab_fallback_total",
    "relevance_shadow_dropped_total",
    "relevance_shadow_compared_pairs_total",
    "relevance_shadow_score_abs_diff",
    "relevance_model_info",
    "relevance_ready",
]


async def test_metrics_expose_every_series_with_its_labels(make_settings):
    async with running(make_settings()) as (_, client):
        await client.post("/relevance", json=body(n=5))
        await client.post("/relevance", json={"query": ""})
        await asyncio.sleep(0.05)  # the reply may leave before the batcher books its step
        reply = await client.get("/metrics")
    text = reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    for name in METRIC_NAMES:
        assert f"# TYPE {name} " in text, name

    def v(metric: str, **labels: str) -> float:
        return metric_value(text, metric, **labels)

    assert v("relevance_ready") == 1
    assert (
        v(
            "relevance_model_info",
            variant="control",
            name="tiny-student",
            version="0.0.1-test",
            precision="int8",
        )
        == 1
    )
    assert v("relevance_model_info", variant="shadow", name="tiny-student") == 1
    assert (
        v("relevance_request_duration_seconds_count", endpoint="/relevance", variant="control", status="200")
        == 1
    )
    assert (
        v("relevance_request_duration_seconds_count", endpoint="/relevance", variant="none", status="422")
        == 1
    )
    # the latency buckets are fine enough around a 100 ms budget to read p99
    bounds = {
        float(line.split('le="')[1].split('"')[0])
        for line in text.splitlines()
        if line.startswith("relevance_request_duration_seconds_bucket") and "+Inf" not in line
    }
    assert len({b for b in bounds if 0.005 <= b <= 0.25}) >= 20
    assert v("relevance_batch_size_pairs_sum", variant="control") == 5
    assert v("relevance_tokenization_duration_seconds_count", variant="control") == 1
    assert v("relevance_queue_wait_seconds_count", variant="control") == 1
    assert v("relevance_inference_duration_seconds_count", variant="control") == 1
    assert v("relevance_batch_tokens_count", variant="control") == 1
    assert v("relevance_cache_misses_total", variant="control") == 5
    assert v("relevance_queue_depth_pairs", variant="control") == 0
    assert v("relevance_in_flight_requests") == 1  # the scrape itself
    assert v("relevance_shed_total", variant="control", reason="deadline_unmeetable") == 0  # exported at 0
    assert v("relevance_shadow_dropped_total", reason="queue_full") == 0
