"""Step mode: raise the offered rate step by step until a step misses the target, then bisect.

A step is *good* when the primary traffic (``POST /relevance``, what callers see) has its p99 within
the target, errors (not 200, not 503) within ``max_error_share`` and sheds (503) within
``max_shed_share``. The search offers ``start``, ``start + step``, ... until the first bad step (or
``max_steps``, or the time budget), then bisects ``refine`` times between the last good and the first
bad offered rate. The answer is the highest achieved primary throughput among good steps.
Mirrored requests (``/relevance/shadow``) are reported beside it but do not decide it.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from loadtest.openloop import Outcome, RateResult
from loadtest.scenario import StepPlan


@dataclass(frozen=True)
class Sent:
    """What one scheduled request was, to read its outcome by."""

    shadow: bool
    pairs: int
    bucket: str


@dataclass
class EndpointStats:
    requests: int = 0
    ok: int = 0
    errors: int = 0  # transport errors, timeouts and statuses other than 200 and 503
    sheds: int = 0  # 503
    pairs_s: float = 0.0  # answered pairs per second
    p50_ms: float = math.inf
    p95_ms: float = math.inf
    p99_ms: float = math.inf
    p99_all_ms: float = math.inf  # failures counted as infinitely slow
    cache_hit_share: float | None = None  # cached results / answered pairs
    variants: dict[str, int] = field(default_factory=dict)  # X-AB-Variant of the replies

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def shed_share(self) -> float:
        return self.sheds / self.requests if self.requests else 0.0


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

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        for name in ("primary", "shadow"):
            stats: EndpointStats = getattr(self, name)
            out[name]["error_share"] = round(stats.error_share, 5)
            out[name]["shed_share"] = round(stats.shed_share, 5)
        out["achieved_rps"] = self.primary.ok / self.wall_s if self.wall_s else 0.0
        return _finite(out)


def _finite(value: object) -> object:
    """JSON has no infinity: an infinite latency (nothing answered) becomes null; floats are rounded."""
    if isinstance(value, float):
        return None if math.isinf(value) or math.isnan(value) else round(value, 3)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def endpoint_stats(outcomes: Sequence[Outcome], sent: Sequence[Sent], wall_s: float) -> EndpointStats:
    """Statistics of one endpoint's measured outcomes; ``outcome.info`` is ``(variant, cached)``."""
    stats = EndpointStats(requests=len(outcomes))
    if not outcomes:
        return stats
    ok = [o for o in outcomes if o.status == 200]
    stats.ok = len(ok)
    stats.sheds = sum(o.status == 503 for o in outcomes)
    stats.errors = stats.requests - stats.ok - stats.sheds
    pairs = sum(sent[o.index].pairs for o in ok)
    stats.pairs_s = pairs / wall_s if wall_s else 0.0
    latency = RateResult(0.0, 0, list(outcomes))
    stats.p50_ms, stats.p95_ms, stats.p99_ms = (latency.percentile_ms(q) for q in (50, 95, 99))
    stats.p99_all_ms = latency.percentile_ms(99, count_failures=True)
    cached = [o.info[1] for o in ok if o.info and o.info[1] is not None]
    if pairs and cached:
        stats.cache_hit_share = sum(cached) / pairs
    stats.variants = dict(Counter(o.info[0] or "?" for o in ok if o.info))
    return stats


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
        problems.append(f"p99 {_ms(p.p99_ms)} ms > {plan.p99_target_ms:g} ms")
    result.meets = not problems
    result.why = "; ".join(problems) or f"p99 {_ms(p.p99_ms)} ms <= {plan.p99_target_ms:g} ms"
    return result


def _ms(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f}"


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
