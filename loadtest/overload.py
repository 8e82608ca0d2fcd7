"""Does the service keep its latency promises under overload? Offered loads as multiples of the raw compute rate.

    relevance loadtest overload --bundle models/default --data ../shared/data/homedepot --out-dir runs/overload

In one run: the raw ORT compute rate ``R`` (pairs/s, the service's own run plan) of the scenario's
pairs, measured before the server starts; then the service with its default settings (``--set`` changes
one). On the fresh server, the sequence that once latched admission shut: 10 s of 4-service requests at
5 a second, then four lone 32-service requests 2 s apart, none with a deadline header (every one must be
answered). Then on the idle server lone requests of 1 to ``max_services`` services without a deadline
header: measured latency against the server's estimate (``X-Estimated-Ms``). Then open-loop Poisson traffic
(``loadtest/scenarios/overload.json``: 1-128 services per request, Zipf-popular queries so the cache
plays its real part, ``X-Deadline-Ms`` on every request) at multiples of ``R``. Per load it reports
goodput (pairs answered inside their deadline, measured from the scheduled send time, per second), the
shed rate, the admitted-late rate (200s after their deadline), errors, the p99 of answers, of refusals
(by error code too) and of /healthz and /metrics probes sent during the load, the cache's share, the
server's peak RSS and CPU and the generator's own CPU; and after each load, how long from its last send
until normal service returns (three consecutive on-time answers to 32-service probes sent every 50 ms).
Promise checks are printed as PASS/FAIL (exit code 1 when one fails). Writes report.json, report.md and
overload.png to --out-dir. Run it on a quiet machine: server and generator share the cores.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.config import OverloadConfig
from loadtest.engine import (
    Outcome,
    Pool,
    Reply,
    endpoint_stats,
    http_get,
    measured_window,
    no_gc_pauses,
    percentile_ms,
    run_closed_loop,
    run_schedule,
    with_pool,
)
from loadtest.plot import PlotUnavailable, overload_plot
from loadtest.raw import raw_compute_rate
from loadtest.report import (
    cpu_description,
    or_na,
    overload_markdown,
    overload_step_line,
    utc_now,
    write_json,
)
from loadtest.scenario import ScenarioError, load_scenario
from loadtest.servers import (
    RssSampler,
    Target,
    max_run_pairs,
    service_command,
    setting,
    settings_env,
    started_server,
)
from loadtest.traffic import PRIMARY_PATH, DataMissing, Draw, Traffic, read_reply

HEALTHZ, METRICS = "/healthz", "/metrics"
LONE_SIZES = (1, 8, 32, 64, 128, 256, 512)  # up to the service's max_services (lone_sizes)
# the latch sequence: small requests at a steady rate, then large lone ones, no deadline header
LATCH_SMALL_SERVICES, LATCH_SMALL_RATE_RPS, LATCH_SMALL_S = 4, 5.0, 10.0
LATCH_LARGE_SERVICES, LATCH_LARGE_COUNT, LATCH_LARGE_GAP_S = 32, 4, 2.0
RECOVERY_SERVICES = 32  # services of a recovery probe
RECOVERY_PERIOD_S = 0.05
RECOVERY_STREAK = 3  # consecutive on-time answers that count as normal service
RECOVERY_LIMIT_S = 5.0
PLOT_NAME = "overload.png"


@dataclass
class LoadStep:
    multiple: float  # offered load / R
    offered_pairs_s: float
    requests: int
    goodput_pairs_s: float  # pairs of 200s received within their deadline (from the send time) per second
    answered_share: float  # 200
    shed_share: float  # 503
    late_share: float  # of the 200s, those received after their deadline
    error_share: float  # other statuses, transport errors, timeouts
    answered_p99_ms: float | None  # None: nothing of that kind to measure
    refusal_p99_ms: float | None
    refusals: dict[str, dict[str, float]]  # error code -> count, p99 and max latency (ms)
    healthz_p99_ms: float | None
    metrics_p99_ms: float | None
    cache_hit_share: float | None  # results answered from the cache / answered pairs
    peak_rss_mb: float
    generator_cpu_share: float  # generator CPU seconds per second of the window
    server_cpu_share: float | None
    max_send_lag_ms: float  # the generator's own worst delay against its schedule
    # last send of the load -> first of 3 consecutive on-time answers (None: not within the limit)
    recovery_s: float | None


def _p99_ms(latencies_s: Sequence[float]) -> float | None:
    return round(percentile_ms(latencies_s, 99), 2) if latencies_s else None


def step_metrics(
    outcomes: Sequence[Outcome],
    paths: Sequence[str],
    pairs: Sequence[int],
    deadline_s: float,
    window_s: float,
) -> dict[str, Any]:
    """The numbers of one load step from its outcomes. ``paths[i]`` and ``pairs[i]`` say what request ``i``
    of the schedule was: traffic to ``/relevance`` or a /healthz or /metrics probe. An answer is on time
    when it arrived within ``deadline_s`` of its scheduled send; ``outcome.info`` is ``read_reply``'s
    ``(variant, cached)`` for a 200 and the body's ``error`` code for a 503."""
    traffic = [o for o in outcomes if paths[o.index] == PRIMARY_PATH]
    stats = endpoint_stats(traffic, pairs, window_s)
    ok = [o for o in traffic if o.status == 200]
    shed = [o for o in traffic if o.status == 503]
    on_time = [o for o in ok if o.latency_s <= deadline_s]
    codes = sorted({str(o.info) for o in shed})
    by_code = {code: [o.latency_s for o in shed if str(o.info) == code] for code in codes}
    return {
        "requests": stats.requests,
        "goodput_pairs_s": sum(pairs[o.index] for o in on_time) / window_s if window_s > 0 else 0.0,
        "answered_share": stats.ok / stats.requests if stats.requests else 0.0,
        "shed_share": stats.shed_share,
        "late_share": (len(ok) - len(on_time)) / len(ok) if ok else 0.0,
        "error_share": stats.error_share,
        "answered_p99_ms": _p99_ms([o.latency_s for o in ok]),
        "refusal_p99_ms": _p99_ms([o.latency_s for o in shed]),
        "refusals": {
            code: {"count": len(lat), "p99_ms": _p99_ms(lat), "max_ms": round(max(lat) * 1000, 2)}
            for code, lat in by_code.items()
        },
        "healthz_p99_ms": _p99_ms([o.latency_s for o in outcomes if paths[o.index] == HEALTHZ]),
        "metrics_p99_ms": _p99_ms([o.latency_s for o in outcomes if paths[o.index] == METRICS]),
        "cache_hit_share": stats.cache_hit_share,
    }


def lone_sizes(max_services: int) -> tuple[int, ...]:
    """The lone table's request sizes: :data:`LONE_SIZES` up to ``max_services``, and ``max_services`` itself."""
    return tuple(sorted({n for n in LONE_SIZES if n < max_services} | {max_services}))


def promise_checks(
    steps: Sequence[LoadStep], lone: Sequence[dict], latch: dict | None = None
) -> list[tuple[str, bool]]:
    """The issue's promises, for the loads at 2x R and above: (line, passed)."""
    out = []
    if latch is not None:
        statuses = ", ".join(map(str, latch["large"]["statuses"]))
        out.append(
            (
                f"after {latch['small']['seconds']:g} s of {latch['small']['services']}-service requests at "
                f"{latch['small']['rate_rps']:g}/s, {latch['large']['requests']} lone "
                f"{latch['large']['services']}-service requests without a header: all 200 ({statuses})",
                latch["large"]["all_200"],
            )
        )
    for s in steps:
        if s.multiple < 2:
            continue
        best_below = max((t.goodput_pairs_s for t in steps if t.multiple < s.multiple), default=0.0)
        refusal = "(none refused)" if s.refusal_p99_ms is None else f"{s.refusal_p99_ms:.1f} ms"
        recovery = f"none within {RECOVERY_LIMIT_S:g} s" if s.recovery_s is None else f"{s.recovery_s:.2f} s"
        goodput = f"{s.goodput_pairs_s:.0f} pairs/s, best at a lower load {best_below:.0f}"
        out += [
            (f"{s.multiple:g}x R: admitted late <= 1%: {100 * s.late_share:.2f}%", s.late_share <= 0.01),
            (f"{s.multiple:g}x R: refusal p99 <= 20 ms: {refusal}", (s.refusal_p99_ms or 0.0) <= 20),
            (
                f"{s.multiple:g}x R: goodput >= 0.8 x the best at a lower load: {goodput}",
                s.goodput_pairs_s >= 0.8 * best_below,
            ),
            (
                f"{s.multiple:g}x R: recovery <= 1 s: {recovery}",
                s.recovery_s is not None and s.recovery_s <= 1.0,
            ),
        ]
    sizes = f"{min(r['services'] for r in lone)}-{max(r['services'] for r in lone)}" if lone else "no"
    out.append(
        (f"lone requests of {sizes} services without a header: all 200", all(r["all_200"] for r in lone))
    )
    return out


def observe(reply: Reply) -> Any:
    """What a step keeps of a reply: ``read_reply``'s (variant, cached) of a 200; a 503's ``error`` code,
    which tells refusals at admission from drops in the queue."""
    if reply.status != 503:
        return read_reply(reply)
    try:
        return json.loads(reply.body).get("error")
    except (ValueError, AttributeError):
        return "unreadable"


async def recovery_time(
    pool: Pool,
    probe: Callable[[], bytes],
    deadline_s: float,
    load_end: float,
    period_s: float = RECOVERY_PERIOD_S,
    streak: int = RECOVERY_STREAK,
    limit_s: float = RECOVERY_LIMIT_S,
) -> float | None:
    """Seconds from ``load_end`` (a ``time.monotonic()`` instant; probing starts then) until the send of the
    first of ``streak`` consecutive probes answered 200 within ``deadline_s`` of their send; one probe
    (``probe()``, a fresh request each time) every ``period_s``, one at a time. None: not within
    ``limit_s``."""

    def good(o: Outcome) -> bool:
        return o.status == 200 and o.latency_s <= deadline_s

    def recovered(outcomes: list[Outcome]) -> bool:
        return len(outcomes) >= streak and all(good(o) for o in outcomes[-streak:])

    probes = (probe() for _ in itertools.count())
    outcomes = await run_closed_loop(
        pool, probes, limit_s, period_s=period_s, until=recovered, start=load_end, limit_s=limit_s
    )
    if not recovered(outcomes):
        return None
    return round(max(0.0, outcomes[-streak].scheduled - load_end), 3)


def fresh_ranks(pool_size: int) -> Iterator[int]:
    """Query ranks from the least popular end of the pool, each once until the pool wraps: requests the
    cache has (almost surely) not seen, for lone requests and recovery probes."""
    return itertools.cycle(range(pool_size - 1, -1, -1))


@dataclass
class Bench:
    """What every part of a run shares: the connections, the traffic and the server."""

    pool: Pool
    traffic: Traffic  # the load
    target: Target  # the service, started here
    cfg: OverloadConfig

    def __post_init__(self) -> None:
        # the same queries, candidate lists as long as the largest lone request; with and without the deadline
        self.lone_sizes = lone_sizes(int(setting(self.cfg.settings, "max_services")))
        self._wide = {True: self.traffic.with_changes(services=max(self.lone_sizes))}
        self._wide[False] = self._wide[True].with_changes(deadline_ms=None)
        self._fresh = fresh_ranks(len(self.traffic.queries))

    def fresh_request(self, services: int, deadline: bool = True) -> bytes:
        """A request for ``services`` services of a query not asked for yet, with the deadline header or none."""
        draw = Draw(next(self._fresh), services, "", False)
        return self._wide[deadline].request(draw, PRIMARY_PATH, self.target.host, self.target.port)


async def load_step(bench: Bench, multiple: float, raw_pairs_s: float, seed: int) -> LoadStep:
    """One offered load: ``multiple`` x R for ``--duration`` s (at most ``--max-requests``), probes of
    /healthz and /metrics spread over it, and the recovery probes from its last send."""
    cfg, traffic, target = bench.cfg, bench.traffic, bench.target
    scenario = traffic.scenario
    rate_rps = multiple * raw_pairs_s / scenario.mean_services
    count = min(cfg.max_requests, max(1, int(rate_rps * cfg.duration)))
    timed = traffic.timed_draws(rate_rps, count, seed)
    span = count / rate_rps
    n_probes = max(2, int(span * cfg.probes_per_s))
    probe_paths = [HEALTHZ if i % 2 == 0 else METRICS for i in range(n_probes)]
    schedule = sorted(
        [
            (t, traffic.request(d, PRIMARY_PATH, target.host, target.port), PRIMARY_PATH, d.services)
            for t, d in timed
        ]
        + [
            ((i + 0.5) * span / n_probes, http_get(target.host, target.port, path), path, 0)
            for i, path in enumerate(probe_paths)
        ],
        key=lambda item: item[0],
    )
    deadline_s = scenario.deadline_ms / 1000
    with no_gc_pauses(), RssSampler(target.pid) as rss:
        start = time.monotonic() + 0.05  # after the collection no_gc_pauses begins with
        recovery = asyncio.create_task(
            recovery_time(
                bench.pool,
                lambda: bench.fresh_request(RECOVERY_SERVICES),
                deadline_s,
                start + timed[-1][0],
            )
        )
        run = await run_schedule(
            bench.pool,
            [s[0] for s in schedule],
            [s[1] for s in schedule],
            0,
            cfg.timeout,
            server_cpu=target.server_cpu,
            observe=observe,
            start=start,
        )
        recovery_s = await recovery
    window_s = measured_window(run.window_s, count, rate_rps)
    metrics = step_metrics(
        run.outcomes, [s[2] for s in schedule], [s[3] for s in schedule], deadline_s, window_s
    )
    return LoadStep(
        multiple=multiple,
        offered_pairs_s=multiple * raw_pairs_s,
        peak_rss_mb=rss.peak_kb / 1024,
        generator_cpu_share=run.generator_cpu_s / window_s,
        server_cpu_share=run.server_cpu_s / window_s if run.server_cpu_s is not None else None,
        max_send_lag_ms=1000 * run.max_send_lag_s,
        recovery_s=recovery_s,
        **metrics,
    )


def _estimate(reply: Reply) -> float | None:
    return float(reply.headers["x-estimated-ms"]) if "x-estimated-ms" in reply.headers else None


def _statuses(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    return {
        "requests": len(outcomes),
        "statuses": sorted({o.status for o in outcomes}),
        "all_200": bool(outcomes) and all(o.status == 200 for o in outcomes),
        "p50_ms": round(float(np.median([o.latency_s for o in outcomes])) * 1000, 1) if outcomes else None,
    }


async def latch_sequence(bench: Bench) -> dict[str, Any]:
    """The sequence that once latched admission shut on an idle server: small requests at a steady rate,
    then large lone ones a few seconds apart; no deadline header on any, each a fresh query."""
    small = [
        bench.fresh_request(LATCH_SMALL_SERVICES, deadline=False)
        for _ in range(int(LATCH_SMALL_RATE_RPS * LATCH_SMALL_S))
    ]
    timeout = bench.cfg.timeout
    small_out = await run_closed_loop(bench.pool, small, timeout, period_s=1 / LATCH_SMALL_RATE_RPS)
    await asyncio.sleep(LATCH_LARGE_GAP_S)
    large = [bench.fresh_request(LATCH_LARGE_SERVICES, deadline=False) for _ in range(LATCH_LARGE_COUNT)]
    large_out = await run_closed_loop(bench.pool, large, timeout, gap_s=LATCH_LARGE_GAP_S)
    result = {
        "small": {"services": LATCH_SMALL_SERVICES, "rate_rps": LATCH_SMALL_RATE_RPS, "seconds": LATCH_SMALL_S,
                  **_statuses(small_out)},
        "large": {"services": LATCH_LARGE_SERVICES, "gap_s": LATCH_LARGE_GAP_S, **_statuses(large_out)},
    }  # fmt: skip
    print(
        f"latch sequence: {len(small_out)} x {LATCH_SMALL_SERVICES} services -> {result['small']['statuses']}, "
        f"then {len(large_out)} x {LATCH_LARGE_SERVICES} -> {result['large']['statuses']}",
        flush=True,
    )
    return result


async def lone_requests(bench: Bench, repeats: int, gap_s: float) -> list[dict[str, Any]]:
    """Lone requests on the idle server, no deadline header, one at a time ``gap_s`` apart, each a fresh
    query (no cache hits): client latency against the server's ``X-Estimated-Ms``."""
    rows = []
    for n in bench.lone_sizes:
        requests = [bench.fresh_request(n, deadline=False) for _ in range(repeats)]
        outcomes = await run_closed_loop(
            bench.pool, requests, bench.cfg.timeout, gap_s=gap_s, observe=_estimate
        )
        latencies = [o.latency_s for o in outcomes]
        estimates = [o.info for o in outcomes if o.info is not None]
        seen = _statuses(outcomes)
        p50 = float(np.median(latencies)) * 1000
        estimate = float(np.median(estimates)) if estimates else None
        rows.append(
            {
                "services": n,
                "requests": seen["requests"],
                "p50_ms": seen["p50_ms"],
                "p90_ms": round(float(np.percentile(latencies, 90)) * 1000, 1),
                "estimate_ms": round(estimate, 1) if estimate is not None else None,
                "measured_over_estimate": round(p50 / estimate, 2) if estimate else None,
                "statuses": seen["statuses"],
                "all_200": seen["all_200"],
            }
        )
        print(
            f"lone {n:4d} services: p50 {p50:6.1f} ms, estimate {or_na(rows[-1]['estimate_ms'])} ms, "
            f"statuses {seen['statuses']}",
            flush=True,
        )
    return rows


def run(cfg: OverloadConfig, command: str) -> int:
    """The overload benchmark of ``cfg``; ``command`` is the command line recorded in the report (the one
    that reproduces it). Returns the exit status: 1 when a promise fails."""
    bundle = Path(cfg.bundle)
    out_dir = Path(cfg.out_dir)
    try:
        scenario = load_scenario(Path(cfg.scenario))
        changes: dict[str, Any] = {}
        if cfg.services_override is not None:
            changes["services"] = cfg.services_override
        if cfg.deadline_ms is not None:
            changes["deadline_ms"] = cfg.deadline_ms
        traffic = Traffic.from_data(scenario, Path(cfg.data)).with_changes(**changes)
        if traffic.scenario.deadline_ms is None:
            raise ScenarioError(
                f"{cfg.scenario}: the overload benchmark needs a deadline (deadline_ms or --deadline-ms)"
            )
    except (ScenarioError, DataMissing) as err:
        print(err, file=sys.stderr)
        return 2
    scenario = traffic.scenario
    settings = {"log_level": "warning", **cfg.settings}
    run_pairs = max_run_pairs(settings)
    sample = traffic.draw(np.random.default_rng(scenario.seed), 64)
    raw = raw_compute_rate(
        bundle, [traffic.pairs(d) for d in sample], None, 0, cfg.raw_seconds, run_pairs=(run_pairs,)
    )
    raw_pairs_s = raw.planned[run_pairs][0]
    print(f"raw compute rate R = {raw_pairs_s:.0f} pairs/s (sorted runs of {run_pairs})", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps: list[LoadStep] = []

    async def drive(bench: Bench) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        latch = await latch_sequence(bench) if cfg.latch else None
        lone = await lone_requests(bench, cfg.lone_repeats, cfg.lone_gap_s)
        for k, multiple in enumerate(cfg.multiples):
            await asyncio.sleep(cfg.pause_s)
            steps.append(await load_step(bench, multiple, raw_pairs_s, scenario.seed + k))
            print(overload_step_line(steps[-1]), flush=True)
        return latch, lone

    with started_server(
        lambda port: service_command(bundle, port), settings_env(settings), out_dir / "server.log"
    ) as target:
        latch, lone = with_pool(target.host, target.port, lambda pool: drive(Bench(pool, traffic, target, cfg)))
    report: dict[str, Any] = {
        "command": command,
        "date": utc_now("%Y-%m-%d %H:%M UTC"),
        "machine": cpu_description(),
        "bundle": str(bundle),
        "settings": settings,
        "raw_pairs_s": raw_pairs_s,
        "max_run_pairs": run_pairs,
        "duration_s": cfg.duration,
        "max_requests": cfg.max_requests,
        "arrivals": scenario.arrivals,
        "traffic": traffic.summary(),
        "steps": [asdict(s) for s in steps],
        "lone_repeats": cfg.lone_repeats,
        "latch": latch,
        "lone": lone,
        "promises": promise_checks(steps, lone, latch),
    }
    text = overload_markdown(report, RECOVERY_LIMIT_S)
    write_json(out_dir / "report.json", report)
    (out_dir / "report.md").write_text(text)
    try:
        overload_plot(report, out_dir / PLOT_NAME)
    except PlotUnavailable as err:
        print(f"no plot: {err}", file=sys.stderr)
    print(text)
    return 0 if all(ok for _, ok in report["promises"]) else 1


if __name__ == "__main__":  # python -m loadtest.overload: the same as relevance loadtest overload
    from loadtest import run_as_relevance_command

    run_as_relevance_command("overload")
