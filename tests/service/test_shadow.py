"""Shadow: its own endpoint, sampled mirroring with agreement metrics, and isolation of the primary
from a failing or slow shadow."""

from __future__ import annotations

import asyncio
import time

from tests.service.support import Backends, body, requests_counted, running, scrape


async def wait_for_mirrors(app, timeout: float = 5.0) -> None:
    mirror = app.state.engine.mirror
    until = time.monotonic() + timeout
    while mirror.pending and time.monotonic() < until:
        await asyncio.sleep(0.01)


async def test_shadow_endpoint_works_out_of_the_box_with_the_default_bundle(make_settings):
    async with running(make_settings()) as (_, client):
        primary = await client.post("/relevance", json=body())
        shadow = await client.post("/relevance/shadow", json=body())
    assert shadow.status_code == 200
    assert shadow.json()["variant"] == "shadow" == shadow.headers["X-AB-Variant"]
    assert [r["probs"] for r in shadow.json()["results"]] == [r["probs"] for r in primary.json()["results"]]


async def test_sampled_traffic_is_mirrored_and_agreement_recorded(make_settings):
    async with running(make_settings(shadow_sample_rate=1.0)) as (app, client):
        for i in range(3):
            assert (await client.post("/relevance", json=body(n=4, start=4 * i))).status_code == 200
        await wait_for_mirrors(app)
        agree = await scrape(client, "relevance_shadow_compared_pairs_total", agree="true")
        disagree = await scrape(client, "relevance_shadow_compared_pairs_total", agree="false")
        diffs = await scrape(client, "relevance_shadow_score_abs_diff_count")
        diff_sum = await scrape(client, "relevance_shadow_score_abs_diff_sum")
    # the default bundle stands in for the shadow: identical scores
    assert (agree, disagree, diffs) == (12, 0, 12)
    assert diff_sum < 1e-5


async def test_unsampled_traffic_is_not_mirrored(make_settings):
    async with running(make_settings(shadow_sample_rate=0.0)) as (app, client):
        await client.post("/relevance", json=body())
        assert app.state.engine.mirror.pending == 0
        assert await scrape(client, "relevance_shadow_compared_pairs_total", agree="true") == 0


async def primary_latencies(client, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        reply = await client.post("/relevance", json=body(n=4, start=4 * i))
        assert reply.status_code == 200, reply.text
        out.append(time.perf_counter() - started)
    return out


async def test_failing_shadow_leaves_primary_intact(make_settings, tiny_bundle):
    backends = Backends()
    settings = make_settings(shadow_bundle=tiny_bundle, shadow_sample_rate=1.0, cache_enabled=False)
    async with running(settings, backends) as (app, client):
        backends["shadow"].fail = True
        latencies = await primary_latencies(client, 5)
        await wait_for_mirrors(app)
        errors = await scrape(client, "relevance_shadow_dropped_total", reason="error")
        primary_5xx = await requests_counted(client, "control", "500")
        shadow_reply = await client.post("/relevance/shadow", json=body())
    assert errors == 5 and primary_5xx == 0
    assert max(latencies) < 0.25
    assert shadow_reply.status_code == 500 and shadow_reply.json()["error"] == "inference_failed"


async def test_slow_full_shadow_drops_mirrored_work_without_slowing_primary(make_settings, tiny_bundle):
    backends = Backends()
    settings = make_settings(
        shadow_bundle=tiny_bundle,
        shadow_sample_rate=1.0,
        cache_enabled=False,
        shadow_max_queue_pairs=4,
        shadow_deadline_ms=200,
        max_batch_pairs=4,
    )
    async with running(settings, backends) as (app, client):
        baseline = await primary_latencies(client, 3)
        backends["shadow"].delay = 0.5
        latencies = await primary_latencies(client, 8)
        await wait_for_mirrors(app)
        dropped = {
            reason: await scrape(client, "relevance_shadow_dropped_total", reason=reason)
            for reason in ("queue_full", "timeout", "expired")
        }
    assert sum(dropped.values()) >= 6, dropped  # at most one running and one queued at a time
    assert dropped["queue_full"] >= 1
    assert max(latencies) < max(baseline) + 0.2, (baseline, latencies)  # never waits on the 0.5 s shadow
