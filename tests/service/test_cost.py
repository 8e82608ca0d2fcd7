"""The cost model of request shape behind admission: run profile, slowdown, and the batcher's use of them."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from relevance.bundle import load_bundle
from relevance.model import BundleModel
from service.batcher import Batcher, BatchLimits, plan_runs
from service.cost import CostModel, Estimate, RunProfile, Slowdown, profile_shapes
from service.deadline import Budget
from service.errors import Overloaded
from service.metrics import ServiceMetrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_profile_is_exact_on_the_grid_and_monotone_between():
    pairs, lengths = profile_shapes(16, 64)
    assert pairs == [1, 2, 4, 8, 16] and lengths == [8, 16, 32, 64]
    table = np.array([[0.001 + 0.0001 * b * n for n in lengths] for b in pairs])
    profile = RunProfile(tuple(pairs), tuple(lengths), table)
    for i, b in enumerate(pairs):
        for j, n in enumerate(lengths):
            assert profile(b, n) == pytest.approx(table[i, j], rel=1e-9)
    along = [profile(b, 40) for b in range(1, 17)]
    assert all(a < b for a, b in itertools.pairwise(along))
    assert profile(3, 24) == pytest.approx(0.001 + 0.0001 * 3 * 24, rel=0.1)  # log-log between points
    assert profile(1, 2) == profile(1, 8)  # clamped below the grid, never extrapolated to ~0


def test_slowdown_rises_at_once_falls_gently_and_decays_to_the_profile():
    clock = FakeClock()
    s = Slowdown(clock=clock)
    s.observe(measured_s=0.03, profiled_s=0.01)  # a 3x slower run
    assert s.factor > 2.4
    s.observe(measured_s=0.01, profiled_s=0.01)
    assert 1.5 < s.factor < 2.4, "one normal run must not undo a slowdown"
    high = s.factor
    clock.now += s.half_life_s
    assert math.log(s.factor) == pytest.approx(math.log(high) / 2, rel=1e-6)
    clock.now += 20 * s.half_life_s
    assert s.factor == pytest.approx(1.0, abs=1e-4), "with nothing measured it returns to the profile"


def test_guessed_lengths_learn_chars_per_token():
    model = CostModel(max_run_pairs=16, max_length=64)
    texts = ["a" * 40, "b" * 400]
    assert model.guess_lengths("q" * 8, texts) == [3 + math.ceil(48 / 4), 64]
    for _ in range(100):  # this traffic has 6 characters per token; the capped pair is not learnt from
        model.observe_tokens("q" * 8, texts, [3 + 8, 64])
    assert model.chars_per_token.value == pytest.approx(6.0, rel=0.01)


def test_pooled_requests_share_a_run_fixed_cost():
    profile = RunProfile((1, 16), (8, 64), np.array([[0.001, 0.002], [0.004, 0.010]]))
    model = CostModel(16, 64, profile)
    assert model.runs_seconds([8]) == pytest.approx(0.001)
    assert model.runs_seconds([8], pooled=True) == pytest.approx(0.004 / 16)
    assert model.runs_seconds([8] * 32) == pytest.approx(2 * 0.004)


@pytest.fixture
def tiny_model(tiny_bundle) -> BundleModel:
    return BundleModel.load(load_bundle(tiny_bundle), "fp32", intra_op_threads=1)


class ShapedRunner:
    """The tiny model, with each run also costing 2 ms + 8 us per padded token (sleep): the tiny
    model alone runs in ~0.1 ms, where timer and cache noise would decide the test, while a real
    bundle's runs cost milliseconds that grow with their shape (and a sleep's wake-up jitter on a
    busy 2-core machine, a few tenths of a ms, stays small against them)."""

    def __init__(self, model: BundleModel) -> None:
        self.model = model

    def run(self, examples):
        width = max(len(ids) for ids, _ in examples)
        time.sleep(0.002 + 0.000008 * len(examples) * width)
        return self.model.run(examples)


def _plan(model: BundleModel, lengths: list[int]) -> list[list[tuple[list[int], list[int]]]]:
    """A lone request's ORT runs as the batcher plans them (length-sorted runs of 16)."""
    ids = model.encoder.encode(["cordless drill"], ["dewalt cordless drill kit"])[0][0]
    examples = [((ids * k)[:k], [0] * k) for k in lengths]
    return [[examples[i] for _, i in run] for run in plan_runs([lengths], 16)]


def _timed(runner: ShapedRunner, runs, observe=None) -> float:
    total = 0.0
    for run in runs:
        started = time.perf_counter()
        runner.run(run)
        seconds = time.perf_counter() - started
        total += seconds
        if observe is not None:
            observe(len(run), max(len(ids) for ids, _ in run), seconds)
    return total


async def test_cost_model_predicts_lone_requests_of_1_to_256_pairs_within_25_percent(tiny_model):
    runner = ShapedRunner(tiny_model)
    limits = BatchLimits(max_run_pairs=16)
    max_length = tiny_model.bundle.manifest.max_length
    batcher = Batcher("control", runner, 3, limits, ServiceMetrics(), max_length)
    await batcher.warmup(tiny_model.encoder.encode(["cordless drill"], ["dewalt cordless drill kit"])[0])
    await batcher.stop()
    cost = batcher.cost
    rng = np.random.default_rng(0)
    sizes = (1, 2, 8, 16, 32, 64, 128, 256)
    # live traffic of mixed sizes refines the warm-up profile, run by run
    for n in rng.choice(sizes, size=30):
        lengths = [int(x) for x in rng.integers(6, max_length + 1, size=int(n))]
        _timed(runner, _plan(tiny_model, lengths), cost.observe_run)
    # then lone requests of every size in a shuffled order, fresh lengths each time, each estimated
    # before it runs and then observed, as in service: admission predicts from what ran before it, so
    # a warm-up taken while a neighbour was busy (the profile reads slow) or a burst of contention is
    # the live runs' to correct, not a constant the estimate keeps for the rest of the test
    ratios: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(9):  # the median of nine: one slow run on a noisy VM does not move it
        for n in rng.permutation(sizes):
            lengths = [int(x) for x in rng.integers(6, max_length + 1, size=int(n))]
            estimated = cost.request_seconds(lengths)
            measured = _timed(runner, _plan(tiny_model, lengths), cost.observe_run)
            ratios[int(n)].append(estimated / measured)
    errors = {n: round(float(np.median(r)) - 1, 3) for n, r in ratios.items()}
    assert all(abs(e) <= 0.25 for e in errors.values()), errors


def _batcher(profile_s: float = 0.01) -> Batcher:
    """A batcher with a flat profile (10 ms a run) and no loop: admission arithmetic only."""
    b = Batcher("control", runner=None, n_labels=3, limits=BatchLimits(max_run_pairs=16), metrics=ServiceMetrics(),
                max_length=64)
    b.cost.profile = RunProfile.constant(profile_s)
    return b


def _header_budget(ms: float) -> Budget:
    return Budget("header", ms, time.monotonic())


def test_noisy_neighbour_tightens_admission_and_its_end_loosens_it():
    clock = FakeClock()
    b = _batcher()
    b.cost.slowdown = Slowdown(clock=clock)
    lengths = [20] * 32  # two runs: 20 ms as profiled
    b.admit(lengths, _header_budget(50))
    for _ in range(3):  # the neighbour makes every run 4x slower
        b.cost.observe_run(16, 20, 0.04)
    with pytest.raises(Overloaded) as refused:
        b.admit(lengths, _header_budget(50))
    assert refused.value.reason == "deadline_unmeetable"
    for _ in range(12):  # the neighbour is gone: runs are back to their profile
        b.cost.observe_run(16, 20, 0.01)
    b.admit(lengths, _header_budget(50))


def test_a_stale_slowdown_lets_one_probe_through_when_idle():
    clock = FakeClock()
    b = _batcher()
    b.cost.slowdown = Slowdown(half_life_s=1e9, clock=clock)  # no decay: only the probe can help
    b.cost.observe_run(16, 20, 0.1)  # 10x slower
    lengths = [20] * 16
    with pytest.raises(Overloaded):
        b.admit(lengths, _header_budget(30))  # just measured: the slowdown is believed
    clock.now += 2 * b.probe_interval_s
    b.admit(lengths, _header_budget(30))  # stale and idle: one probe is admitted...
    with pytest.raises(Overloaded):
        b.admit(lengths, _header_budget(30))  # ...and only one per interval


def test_default_budget_bounds_the_wait_not_the_compute():
    b = _batcher()
    huge = [64] * 512  # 32 runs: 320 ms of compute
    started = time.monotonic()
    estimate = b.admit(huge, Budget("default", 100, started))
    assert estimate.own_s > 0.3 and estimate.until_started_s < 0.1
    with pytest.raises(Overloaded):
        b.admit(huge, Budget("header", 100, started))


def test_a_queued_job_is_too_late_once_it_cannot_finish_by_the_callers_deadline():
    from service.batcher import Job

    now = time.monotonic()
    job = Job([([1, 2], [0, 0])], Budget("header", 100, now), future=None, probs=np.empty((1, 3)), cost_s=0.03)
    assert not job.too_late(now + 0.05, slowdown=1.0)  # 50 + 30 ms <= 100 ms
    assert job.too_late(now + 0.05, slowdown=2.0)  # 50 + 60 ms > 100 ms: computing it would be wasted
    waiting = Job([([1, 2], [0, 0])], Budget("default", 100, now), future=None, probs=np.empty((1, 3)), cost_s=1.0)
    assert not waiting.too_late(now + 0.05, slowdown=2.0)  # no caller deadline: only the start is bounded
    assert waiting.too_late(now + 0.1, slowdown=1.0)
    waiting.taken = 1
    assert not waiting.too_late(now + 1.0, slowdown=1.0)  # started work is finished


def test_estimate_error_margin_is_a_high_quantile_of_measured_over_estimated():
    from service.cost import EstimateError

    error = EstimateError(quantile=0.9, window=100, min_samples=10)
    assert error.multiplier == error.initial
    for i in range(100):  # estimates 0-20% short, and tiny estimates that say nothing
        error.observe(measured_s=0.1 * (1 + 0.002 * i), estimated_s=0.1)
        error.observe(measured_s=0.01, estimated_s=0.001)
    assert error.multiplier == pytest.approx(1.18, abs=0.01)
    for _ in range(100):  # estimates that turn out long never shrink the margin below 1
        error.observe(measured_s=0.05, estimated_s=0.1)
    assert error.multiplier == 1.0


def test_admission_reserves_what_it_admits_until_it_is_queued():
    b = _batcher()  # 10 ms a run
    lengths = [20] * 16
    first = b.admit(lengths, _header_budget(20))
    assert b.ahead_s() == pytest.approx(0.01 * b.cost.factor)
    with pytest.raises(Overloaded):  # a burst: the second sees the first although it is not queued yet
        b.admit(lengths, _header_budget(20))
    b.release(first)  # the first failed before it was queued
    assert b.ahead_s() == 0.0
    b.admit(lengths, _header_budget(20))


def test_without_a_header_an_idle_batcher_admits_whatever_the_loop_lag_reads():
    """The default budget bounds the wait behind other work: on an idle batcher there is none, so a
    lagging event loop (a reading above the whole budget) must not refuse a lone request."""
    b = _batcher()
    b.loop_lag = lambda: 0.5
    lengths = [20] * 128
    b.admit(lengths, Budget("default", 100, time.monotonic()))  # idle: admitted
    with pytest.raises(Overloaded):  # now something is ahead: the lag and the wait count again
        b.admit(lengths, Budget("default", 100, time.monotonic()))
    with pytest.raises(Overloaded):  # a caller's deadline is the caller's: 256 pairs (160 ms) cannot make it
        _batcher().admit([20] * 256, _header_budget(100))


def test_a_margin_learnt_under_overload_does_not_refuse_a_lone_request_after_it():
    """Late answers under overload push the busy margin to its cap; once the queue has drained, a
    request that fits as profiled is admitted: the idle margin is its own, learnt from idle admissions."""
    b = _batcher()  # 10 ms a run
    busy = Estimate(own_s=0.05, ahead_s=0.2, wait_s=0.0, idle=False)
    for _ in range(64):  # queued requests answered 3x later than estimated
        b.cost.error(busy).observe(measured_s=3 * busy.until_scored_s, estimated_s=busy.until_scored_s)
    assert b.cost.errors["busy"].multiplier == 3.0
    lengths = [20] * 32  # two runs: 20 ms as profiled
    first = b.admit(lengths, _header_budget(40))  # idle: the idle margin (1.1) applies
    assert first.idle
    with pytest.raises(Overloaded):  # now one is ahead: the busy margin applies again
        b.admit(lengths, _header_budget(80))
    assert b.describe()["estimate_error_multiplier"] == {"idle": 1.1, "busy": 3.0}
