"""Find the highest throughput the relevance service sustains under a p99 target, for one scenario.

    relevance loadtest run --scenario loadtest/scenarios/ads-32.yaml --bundle models/default \\
        --p99-target-ms 100 --out-dir runs/loadtest/ads-32
    relevance loadtest run --scenario loadtest/scenarios/ab-shadow.yaml --url http://127.0.0.1:8000
    relevance loadtest run --scenario loadtest/scenarios/mixed-sizes.json --check
    relevance loadtest run --scenario loadtest/scenarios/ads-32.yaml --set max_batch_pairs=32 --max-steps 4
    relevance loadtest run --print-schema

The scenario file says what traffic to send (Zipf-popular queries, services per request, A/B bucket
mix, shadow mirror share, deadline header) and how to step the offered rate; see
loadtest/scenario.py or --print-schema. The load is open loop (Poisson arrivals, latency from the
scheduled send time; loopback only; every step bounded in requests and seconds). With --bundle the
service is started here on a free loopback port (its CPU is measured too); with --url an already
running one is loaded. Writes report.json (every step), report.md (a table) and
latency-throughput.png to --out-dir. Run it on a quiet machine: server and generator share the cores
(the generator's own CPU and send lag are measured and reported). docs/operations.md (Load testing)
describes the report fields and the Locust file.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.config import STEP_OVERRIDES, LoadRunConfig
from loadtest.engine import (
    ScheduleRun,
    endpoint_stats,
    generator_cpu_seconds,
    measured_window,
    planned_count,
    run_schedule,
    with_pool,
)
from loadtest.plot import PlotUnavailable, latency_plot
from loadtest.report import (
    generator_summary,
    run_markdown,
    run_report,
    run_step_line,
    write_json,
)
from loadtest.scenario import Scenario, ScenarioError, load_scenario
from loadtest.search import StepResult, search
from loadtest.servers import (
    Target,
    parse_url,
    service_command,
    settings_env,
    started_server,
    wait_ready,
)
from loadtest.traffic import PRIMARY_PATH, SHADOW_PATH, DataMissing, Traffic, read_reply

PLOT_NAME = "latency-throughput.png"

def overrides(cfg: LoadRunConfig) -> dict[str, Any]:
    """The scenario's settings that ``cfg`` overrides."""
    step = {name: getattr(cfg, name) for name in STEP_OVERRIDES if getattr(cfg, name) is not None}
    if cfg.p99_target_ms is not None:
        step["p99_target_ms"] = cfg.p99_target_ms
    out: dict[str, Any] = {"step": step} if step else {}
    if cfg.seed is not None:
        out["seed"] = cfg.seed
    return out


@dataclass(frozen=True)
class Sent:
    """What one scheduled request was, to read its outcome by."""

    shadow: bool
    pairs: int
    bucket: str


def measure_step(target: Target, traffic: Traffic, rate_pairs_s: float, phase: str, index: int) -> StepResult:
    """One step: a fresh Zipf draw and Poisson schedule (seeded by the step), the mirrored share sent to
    the shadow path at the same moments as their primaries."""
    scenario = traffic.scenario
    plan = scenario.step
    rps = rate_pairs_s / scenario.mean_services
    n_warm, count = planned_count(rps, plan.duration_s, plan.max_requests, plan.warmup_s)
    primary_path, shadow_path = target.prefix + PRIMARY_PATH, target.prefix + SHADOW_PATH
    offsets: list[float] = []
    requests: list[bytes] = []
    sent: list[Sent] = []
    warm_entries = 0
    for i, (offset, draw) in enumerate(traffic.timed_draws(rps, count, scenario.seed + 7919 * (index + 1))):
        for shadow in (False, True) if draw.shadow else (False,):
            offsets.append(offset)
            path = shadow_path if shadow else primary_path
            requests.append(traffic.request(draw, path, target.host, target.port))
            sent.append(Sent(shadow, draw.services, draw.bucket))
        if i + 1 == n_warm:
            warm_entries = len(offsets)

    async def go(pool) -> tuple[ScheduleRun, int]:
        run = await run_schedule(
            pool, offsets, requests, warm_entries, plan.timeout_s, target.server_cpu, read_reply
        )
        return run, pool.opened

    run, connections = with_pool(target.host, target.port, go)
    primary = [o for o in run.outcomes if not sent[o.index].shadow]
    mirrored = [o for o in run.outcomes if sent[o.index].shadow]
    pairs = [s.pairs for s in sent]
    wall_s = measured_window(run.window_s, len(primary), rps)
    return StepResult(
        phase=phase,
        offered_rps=rps,
        offered_pairs_s=rps * scenario.mean_services,
        primary=endpoint_stats(primary, pairs, wall_s),
        shadow=endpoint_stats(mirrored, pairs, wall_s),
        buckets=dict(Counter(sent[o.index].bucket for o in primary)),
        wall_s=wall_s,
        generator_cpu_pct=100 * run.generator_cpu_s / wall_s if wall_s else 0.0,
        server_cpu_pct=100 * run.server_cpu_s / wall_s if run.server_cpu_s is not None and wall_s else None,
        max_send_lag_ms=1000 * run.max_send_lag_s,
        connections=connections,
    )


def run(cfg: LoadRunConfig, command: str) -> int:
    """The step search of ``cfg``; ``command`` is the command line recorded in the report (the one that
    reproduces it). Returns the exit status."""
    if cfg.print_schema:
        print(json.dumps(Scenario.model_json_schema(), indent=2))
        return 0
    try:
        scenario = load_scenario(Path(cfg.scenario), overrides(cfg))
        target = parse_url(cfg.url) if cfg.url else None
    except (ScenarioError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    bundle = None if target else Path(cfg.bundle or "models/default")
    if bundle is not None and not (bundle / "bundle.json").is_file():
        print(
            f"no bundle at {bundle} (expected {bundle / 'bundle.json'}); pass --bundle or --url",
            file=sys.stderr,
        )
        return 2
    try:
        traffic = Traffic.from_data(scenario, Path(cfg.data))
    except (DataMissing, FileNotFoundError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    print(f"scenario {scenario.name}: {json.dumps(traffic.summary())}", flush=True)
    if cfg.check:
        plan = scenario.step
        print(
            f"step plan: {plan.start_pairs_s:g} pairs/s + {plan.step_pairs_s:g} per step, up to "
            f"{plan.max_steps} steps and {plan.refine} refinements of ~{plan.step_seconds:g} s each, "
            f"at most {plan.max_total_s:g} s; p99 target {plan.p99_target_ms:g} ms"
        )
        return 0

    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path("runs/loadtest") / scenario.name
    out_dir.mkdir(parents=True, exist_ok=True)
    cpu0 = generator_cpu_seconds()
    with ExitStack() as stack:
        if target is None:
            assert bundle is not None
            settings = {"log_level": "warning", **scenario.service_settings, **cfg.settings}
            try:
                target = stack.enter_context(
                    started_server(
                        lambda port: service_command(bundle, port),
                        settings_env(settings),
                        out_dir / "service.log",
                    )
                )
            except RuntimeError as err:
                print(err, file=sys.stderr)
                return 1
            target_desc = {
                "url": target.url,
                "started_here": True,
                "bundle": str(bundle),
                "settings": settings,
            }
        else:
            try:
                wait_ready(target.url, timeout_s=0, attempt_s=5.0)
            except RuntimeError as err:
                print(err, file=sys.stderr)
                return 1
            if scenario.service_settings:
                print("note: the scenario's service_settings apply only to a service started here (--bundle)")
            target_desc = {"url": target.url, "started_here": False, "bundle": None, "settings": None}
        print(f"loading {target.url}", flush=True)
        plan = scenario.step
        count = iter(range(10_000))

        def measure(rate: float, phase: str) -> StepResult:
            result = measure_step(target, traffic, rate, phase, next(count))
            time.sleep(plan.pause_s)
            return result

        result = search(measure, plan, on_step=lambda s: print(run_step_line(s), flush=True))
    generator = generator_summary(result, generator_cpu_seconds() - cpu0)

    plot_name: str | None = PLOT_NAME
    try:
        latency_plot(
            result, plan.p99_target_ms, out_dir / PLOT_NAME, f"{scenario.name}: latency vs throughput"
        )
    except PlotUnavailable as err:
        print(f"no plot: {err}", file=sys.stderr)
        plot_name = None
    report = run_report(command, Path(cfg.scenario), scenario, traffic, target_desc, result, generator, plot_name)
    write_json(out_dir / "report.json", report)
    (out_dir / "report.md").write_text(run_markdown(report, result))
    r = report["result"]
    best = (
        f"{r['max_pairs_s']:.0f} pairs/s" if r["max_pairs_s"] is not None else "none (no step met the target)"
    )
    print(f"max throughput with p99 <= {plan.p99_target_ms:g} ms: {best}; stopped: {r['stopped']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    print(
        f"wrote {out_dir / 'report.json'}, {out_dir / 'report.md'}"
        + (f", {out_dir / plot_name}" if plot_name else "")
    )
    return 0


if __name__ == "__main__":  # python -m loadtest.run: the same as relevance loadtest run
    from loadtest import run_as_relevance_command

    run_as_relevance_command("run")
