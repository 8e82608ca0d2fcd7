"""The rate searches: the benchmark's sweep over given rates, and the step search of a scenario run.

The sweep (``loadtest.bench``) measures rising offered rates until one misses the p99 target badly,
then bisects towards the knee; a rate meets the target when its p99 with failures counted as
infinitely slow is within it.

The step search (``loadtest.run``) raises the offered rate step by step until a step misses the target,
then bisects. A step is *good* when the primary traffic (``POST /relevance``, what callers see) has its
p99 within the target, errors (not 200, not 503) within ``max_error_share`` and sheds (503) within
``max_shed_share``. The search offers ``start``, ``start + step``, ... until the first bad step (or
``max_steps``, or the time budget), then bisects ``refine`` times between the last good and the first
bad offered rate. The answer is the highest achieved primary throughput among good steps. Mirrored
requests (``/relevance/shadow``) are reported beside it but do not decide it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loadtest.engine import EndpointStats, RateResult
from loadtest.report import ms
from loadtest.scenario import StepPlan


@dataclass
class Sweep:
    name: str
    results: list[RateResult] = field(default_factory=list)

    def best(self, p99_target_ms: float) -> RateResult | None:
        """The highest achieved throughput among rates whose p99 (failures counted) meets the target."""
        good = [r for r in self.results if r.meets(p99_target_ms)]
        return max(good, key=lambda r: r.achieved_pairs_s) if good else None


def sweep(
    name: str,
    measure: Callable[[float], RateResult],
    rates: list[float],
    target_ms: float,
    refine: int,
    on_result: Callable[[RateResult], None] | None = None,
) -> Sweep:
    """Measure rising rates until one misses the target badly, then bisect towards the knee ``refine``
    times; when even the first rate misses, the bisection starts from zero, so a service that meets
    the target only at light load still gets its highest passing rate rather than none."""
    result = Sweep(name)

    def run(rate: float) -> RateResult:
        res = measure(rate)
        result.results.append(res)
        if on_result:
            on_result(res)
        return res

    for rate in rates:
        res = run(rate)
        if res.percentile_ms(99, True) > 3 * target_ms or res.failure_rate > 0.2:
            break
    for _ in range(refine):
        passing = [r.offered_pairs_s for r in result.results if r.meets(target_ms)]
        failing = [r.offered_pairs_s for r in result.results if not r.meets(target_ms)]
        low = max(passing, default=0.0)
        high = min((f for f in failing if f > low), default=None)
        if high is None or high - low < 0.03 * high:
            break
        run((low + high) / 2)
    result.results.sort(key=lambda r: r.offered_pairs_s)
    return result


@dataclass
class StepResult:
    phase: str  # "step" or "refine"
    offered_rps: float
    offered_pairs_s: float
    primary: EndpointStats = field(default_factory=EndpointStats)
    shadow: EndpointStats = field(default_factory=EndpointStats)
    buckets: dict[str, int] = field(default_factory=dict)  # X-AB-Bucket sent ("" = none)
    wall_s: float = 0.0
    generator_cpu_pct: float = 0.0  # of one core, over the measured window
    server_cpu_pct: float | None = None  # of one core; only when the kit started the server
    max_send_lag_ms: float = 0.0  # the generator's own worst delay in sending on schedule
    connections: int = 0
    meets: bool = False
    why: str = ""

    @property
    def achieved_pairs_s(self) -> float:
        return self.primary.pairs_s


def judge(result: StepResult, plan: StepPlan) -> StepResult:
    """Mark ``result`` good or bad against the plan's target and thresholds, saying why."""
    p = result.primary
    problems = []
    if p.requests == 0:
        problems.append("no request measured")
    if p.shed_share > plan.max_shed_share:
        problems.append(f"shed {100 * p.shed_share:.1f}% > {100 * plan.max_shed_share:g}%")
    if p.error_share > plan.max_error_share:
        problems.append(f"errors {100 * p.error_share:.1f}% > {100 * plan.max_error_share:g}%")
    if p.p99_ms > plan.p99_target_ms:
        problems.append(f"p99 {ms(p.p99_ms)} ms > {plan.p99_target_ms:g} ms")
    result.meets = not problems
    result.why = "; ".join(problems) or f"p99 {ms(p.p99_ms)} ms <= {plan.p99_target_ms:g} ms"
    return result


@dataclass
class Search:
    steps: list[StepResult]
    stopped: str  # why the stepping ended

    @property
    def best(self) -> StepResult | None:
        good = [s for s in self.steps if s.meets]
        return max(good, key=lambda s: s.achieved_pairs_s) if good else None


def search(
    measure: Callable[[float, str], StepResult],
    plan: StepPlan,
    clock: Callable[[], float] = time.monotonic,
    on_step: Callable[[StepResult], None] | None = None,
) -> Search:
    """Run the step search; ``measure(offered_pairs_s, phase)`` runs one step. No step starts that would
    end past ``plan.max_total_s`` (each is bounded by warm-up + duration + pause + the client timeout)."""
    started = clock()
    steps: list[StepResult] = []

    def fits() -> bool:
        return clock() - started + plan.step_seconds <= plan.max_total_s

    def run(rate: float, phase: str) -> StepResult:
        result = judge(measure(rate, phase), plan)
        steps.append(result)
        if on_step:
            on_step(result)
        return result

    stopped = f"max_steps ({plan.max_steps}) reached with every step good"
    first_bad: StepResult | None = None
    for k in range(plan.max_steps):
        if not fits():
            stopped = f"time budget ({plan.max_total_s:g} s) spent after {k} steps"
            break
        result = run(plan.start_pairs_s + k * plan.step_pairs_s, "step")
        if not result.meets:
            first_bad = result
            stopped = f"step {k + 1} at {result.offered_pairs_s:.0f} pairs/s is bad: {result.why}"
            break
    good = [s.offered_pairs_s for s in steps if s.meets]
    if first_bad is not None and good:
        low, high = max(good), first_bad.offered_pairs_s
        for _ in range(plan.refine):
            if high - low < 0.03 * high or not fits():
                break
            mid = (low + high) / 2
            if run(mid, "refine").meets:
                low = mid
            else:
                high = mid
    elif first_bad is not None:
        stopped += f" (the first step is bad: start below {plan.start_pairs_s:g} pairs/s)"
    return Search(steps, stopped)
