"""Latency budget: refuse at once what cannot finish in time, drop what expired in the queue, bound it."""

from __future__ import annotations

import asyncio
import time

from tests.service.support import Backends, body, running, scrape


def assert_shed(reply, code: str) -> None:
    assert reply.status_code == 503, reply.text
    assert reply.json()["error"] == code
    assert reply.json()["request_id"] == reply.headers["X-Request-Id"]
    assert int(reply.headers["Retry-After"]) >= 1


async def test_unmeetable_deadline_is_refused_at_once(make_settings):
    backends = Backends()
    async with running(make_settings(cache_enabled=False), backends) as (_, client):
        backends["control"].delay = 0.15
        warmup_runs = len(backends["control"].batch_sizes)
        slow = await client.post("/relevance", json=body(n=4), headers={"X-Deadline-Ms": "5000"})
        assert slow.status_code == 200  # admitted on the warm-up cost; its run teaches the real cost
        started = time.perf_counter()
        refused = await client.post("/relevance", json=body(n=4, start=9), headers={"X-Deadline-Ms": "30"})
        elapsed = time.perf_counter() - started
        shed = await scrape(client, "relevance_shed_total", variant="control", reason="deadline_unmeetable")
        runs = len(backends["control"].batch_sizes) - warmup_runs
    assert_shed(refused, "deadline_unmeetable")
    assert elapsed < 0.1, "refused work must not wait for the backend"
    assert shed == 1
    assert runs == 1  # only the admitted request reached the backend


async def test_work_whose_deadline_passes_in_the_queue_is_dropped_before_inference(make_settings):
    backends = Backends()
    settings = make_settings(cache_enabled=False, max_batch_pairs=4)
    async with running(settings, backends) as (_, client):
        backends["control"].delay = 0.3
        runs_before = len(backends["control"].batch_sizes)
        first = asyncio.create_task(
            client.post("/relevance", json=body(n=4), headers={"X-Deadline-Ms": "5000"})
        )
        await asyncio.sleep(0.05)  # the first request is now running, alone (one step holds 4 pairs)
        started = time.perf_counter()
        late = await client.post("/relevance", json=body(n=4, start=4), headers={"X-Deadline-Ms": "100"})
        answered_after = time.perf_counter() - started
        assert (await first).status_code == 200
        await asyncio.sleep(0.05)
        runs = len(backends["control"].batch_sizes) - runs_before
        shed = await scrape(client, "relevance_shed_total", variant="control", reason="expired_in_queue")
    assert_shed(late, "expired_in_queue")
    assert answered_after < 0.25, "the client hears at its deadline, not when the queue reaches it"
    assert runs == 1, "expired work never reaches the backend"
    assert shed == 1


async def test_queue_is_bounded(make_settings):
    backends = Backends()
    settings = make_settings(cache_enabled=False, max_batch_pairs=4, max_queue_pairs=4)
    async with running(settings, backends) as (_, client):
        backends["control"].delay = 0.2
        deadline = {"X-Deadline-Ms": "5000"}
        running_one = asyncio.create_task(client.post("/relevance", json=body(n=4), headers=deadline))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(client.post("/relevance", json=body(n=4, start=4), headers=deadline))
        await asyncio.sleep(0.02)
        full = await client.post("/relevance", json=body(n=4, start=8), headers=deadline)
        assert [(await t).status_code for t in (running_one, queued)] == [200, 200]
        shed = await scrape(client, "relevance_shed_total", variant="control", reason="queue_full")
    assert_shed(full, "queue_full")
    assert shed == 1


async def test_deadline_header_is_validated(make_settings):
    async with running(make_settings()) as (_, client):
        for bad in ("soon", "-5", "0"):
            reply = await client.post("/relevance", json=body(), headers={"X-Deadline-Ms": bad})
            assert reply.status_code == 422, bad
            assert "x-deadline-ms" in reply.json()["fields"][0]["field"].lower()
