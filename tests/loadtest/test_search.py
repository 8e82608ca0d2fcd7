"""Step mode: which steps are good, where the search stops, how it refines, and its time budget; the
statistics of one endpoint's outcomes and their JSON."""

from __future__ import annotations

import math

import pytest

from loadtest.engine import EndpointStats, Outcome, endpoint_stats
from loadtest.report import step_json
from loadtest.scenario import StepPlan
from loadtest.search import StepResult, judge, search


def result(rate: float, p99: float, requests: int = 100, sheds: int = 0, errors: int = 0) -> StepResult:
    primary = EndpointStats(
        requests=requests,
        ok=requests - sheds - errors,
        sheds=sheds,
        errors=errors,
        pairs_s=0.95 * rate,
        p50_ms=p99 / 3,
        p95_ms=p99 / 1.5,
        p99_ms=p99,
    )
    return StepResult("step", rate / 32, rate, primary=primary)


def test_judge_checks_p99_errors_and_sheds():
    plan = StepPlan(p99_target_ms=100, max_error_share=0.01, max_shed_share=0.02)
    assert judge(result(100, 99), plan).meets
    bad = judge(result(100, 101), plan)
    assert not bad.meets and "p99 101.0 ms > 100 ms" in bad.why
    assert judge(result(100, 50, sheds=2), plan).meets  # 2% is the limit
    assert "shed 3.0% > 2%" in judge(result(100, 50, sheds=3), plan).why
    assert "errors 2.0% > 1%" in judge(result(100, 50, errors=2), plan).why
    assert "no request measured" in judge(result(100, math.inf, requests=0), plan).why


def fake_service(knee: float, calls: list[tuple[float, str]]):
    """p99 grows with the offered rate and passes 100 ms at ``knee`` pairs/s."""

    def measure(rate: float, phase: str) -> StepResult:
        calls.append((rate, phase))
        r = result(rate, 100 * rate / knee)
        r.phase = phase
        return r

    return measure


def test_search_steps_up_stops_at_the_first_bad_step_and_bisects():
    calls: list[tuple[float, str]] = []
    plan = StepPlan(start_pairs_s=100, step_pairs_s=100, max_steps=20, refine=3, p99_target_ms=100)
    found = search(fake_service(knee=440, calls=calls), plan)
    assert calls == [
        (100, "step"),
        (200, "step"),
        (300, "step"),
        (400, "step"),
        (500, "step"),
        (450, "refine"),
        (425, "refine"),
        (437.5, "refine"),
    ]
    assert "step 5 at 500 pairs/s is bad" in found.stopped
    assert found.best.offered_pairs_s == 437.5 and found.best.meets
    assert [s.meets for s in found.steps] == [True] * 4 + [False, False, True, True]


def test_search_reports_max_steps_and_a_bad_first_step():
    plan = StepPlan(start_pairs_s=100, step_pairs_s=100, max_steps=3, refine=2)
    found = search(fake_service(knee=10_000, calls=[]), plan)
    assert len(found.steps) == 3 and "max_steps (3) reached" in found.stopped
    assert found.best.offered_pairs_s == 300
    found = search(fake_service(knee=50, calls=[]), plan)
    assert found.best is None and len(found.steps) == 1 and "start below 100 pairs/s" in found.stopped


def test_search_keeps_to_its_time_budget():
    now = [0.0]
    plan = StepPlan(duration_s=10, warmup_s=2, pause_s=1, max_steps=50, max_total_s=60)

    def measure(rate: float, phase: str) -> StepResult:
        now[0] += plan.step_seconds
        return result(rate, 1)

    found = search(measure, plan, clock=lambda: now[0])
    assert len(found.steps) == 4 and now[0] <= plan.max_total_s  # 4 x 13 s fit in 60 s, a fifth would not
    assert "time budget (60 s) spent after 4 steps" in found.stopped


def test_endpoint_stats_from_outcomes():
    pairs = [8, 4, 8, 8]
    outcomes = [
        Outcome(0, 0.010, 200, 0, ("control", 8)),
        Outcome(0, 0.020, 200, 1, ("candidate", 0)),
        Outcome(0, 0.001, 503, 2, None),
        Outcome(0, 10.0, 0, 3, None),  # timeout
    ]
    stats = endpoint_stats(outcomes, pairs, wall_s=2.0)
    assert (stats.requests, stats.ok, stats.sheds, stats.errors) == (4, 2, 1, 1)
    assert stats.pairs_s == pytest.approx(6) and stats.cache_hit_share == pytest.approx(8 / 12)
    assert stats.p50_ms == pytest.approx(20) and stats.p99_ms == pytest.approx(20)  # "higher" percentiles
    assert math.isinf(stats.p99_all_ms) and stats.variants == {"control": 1, "candidate": 1}
    json_form = step_json(StepResult("step", 1, 8, primary=stats))
    assert json_form["primary"]["p99_all_ms"] is None and json_form["primary"]["shed_share"] == 0.25
    assert json_form["shadow"]["p99_ms"] is None  # nothing mirrored: null, not Infinity
