"""``Server-Timing``: every phase a request lives, in order, adding up to its ``latency_ms``."""

from __future__ import annotations

import pytest

from service.timing import PHASES, Timeline, parse_server_timing
from tests.service.support import body, running


def test_timeline_durations_run_from_mark_to_mark_and_skip_phases_not_reached():
    t = Timeline(received=10.0)
    t.mark("parse", 10.001)
    t.mark("admit", 10.0015)
    t.mark("respond", 10.004)
    ms = t.durations_ms(until=10.004)
    assert list(ms) == ["parse", "admit", "respond", "total"]
    assert ms["parse"] == pytest.approx(1.0) and ms["admit"] == pytest.approx(0.5)
    assert ms["respond"] == pytest.approx(2.5) and ms["total"] == pytest.approx(4.0)
    assert parse_server_timing(t.header(10.004)) == pytest.approx(ms, abs=1e-3)


def test_parse_server_timing_reads_the_w3c_form():
    assert parse_server_timing("db;dur=53, app;dur=47.2;desc=\"x\", miss") == {"db": 53.0, "app": 47.2}


async def test_scored_answer_carries_every_phase_summing_to_its_latency(make_settings):
    async with running(make_settings(cache_enabled=True)) as (_, client):
        payload = body(n=5)
        fresh = await client.post("/relevance", json=payload)
        cached = await client.post("/relevance", json=payload)
    assert fresh.status_code == 200 == cached.status_code
    phases = parse_server_timing(fresh.headers["Server-Timing"])
    assert list(phases) == [*PHASES, "total"]
    assert all(ms >= 0 for ms in phases.values()) and phases["inference"] > 0
    # the phases tile the request from arrival to the answer built (rounding to 1 us per phase)
    assert sum(phases[p] for p in PHASES) == pytest.approx(phases["total"], abs=0.01)
    # latency_ms is read while the answer is built, inside the respond phase
    latency_ms = fresh.json()["latency_ms"]
    assert latency_ms <= phases["total"] + 0.01 and phases["total"] - latency_ms <= phases["respond"] + 0.01
    # every result from the cache: no tokenisation, queue or inference
    assert list(parse_server_timing(cached.headers["Server-Timing"])) == ["parse", "admit", "respond", "total"]
