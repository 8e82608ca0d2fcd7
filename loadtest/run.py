"""Find the highest throughput the relevance service sustains under a p99 target, for one scenario.

    python -m loadtest.run --scenario loadtest/scenarios/ads-32.yaml --bundle models/default \\
        --p99-target-ms 100 --out-dir runs/loadtest/ads-32

The scenario file says what traffic to send (Zipf-popular queries, services per request, A/B bucket
mix, shadow mirror share, deadline header) and how to step the offered rate; see
loadtest/scenario.py or --print-schema. The load is open loop (Poisson arrivals, latency from the
scheduled send time; loopback only; every step bounded in requests and seconds). With --bundle the
service is started here on a free loopback port (its CPU is measured too); with --url an already
running one is loaded. Writes report.json (every step), report.md (a table) and
latency-throughput.png to --out-dir. Run it on a quiet machine: server and generator share the cores
(the generator's own CPU and send lag are measured and reported).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import shlex
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.openloop import (
    LOOPBACK,
    Pool,
    arrival_offsets,
    measured_window,
    planned_count,
    run_schedule,
)
from loadtest.plot import PlotUnavailable, latency_plot
from loadtest.report import cpu_description
from loadtest.scenario import Scenario, ScenarioError, load_scenario
from loadtest.servers import (
    HOST,
    add_set_option,
    free_port,
    parse_settings,
    process_cpu_seconds,
    running_server,
    service_command,
    settings_env,
)
from loadtest.step import Search, Sent, StepResult, endpoint_stats, search
from loadtest.traffic import PRIMARY_PATH, SHADOW_PATH, Traffic, read_reply
from loadtest.workload import DataMissing

PLOT_NAME = "latency-throughput.png"
# Above these the generator competes with the server for the cores: its numbers are suspect.
GENERATOR_CPU_WARN_PCT = 50.0
SEND_LAG_WARN_MS = 10.0

_STEP_OVERRIDES = {
    "start_pairs_s": "offered rate of the first step, pairs/s",
    "step_pairs_s": "added to the offered rate at each step, pairs/s",
    "max_steps": "steps at most before refining",
    "refine": "bisection steps between the last good and the first bad rate",
    "duration_s": "measured seconds per step",
    "warmup_s": "unmeasured seconds at each step's rate first",
    "pause_s": "seconds between steps",
    "max_total_s": "time budget of the whole search, seconds",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python -m loadtest.run --scenario loadtest/scenarios/ab-shadow.yaml --url http://127.0.0.1:8000\n"
        "  python -m loadtest.run --scenario loadtest/scenarios/mixed-sizes.json --check\n"
        "  python -m loadtest.run --scenario loadtest/scenarios/ads-32.yaml --set max_batch_pairs=32 "
        "--max-steps 4\n"
        "  python -m loadtest.run --print-schema\n"
        "docs/operations.md (Load testing) describes the report fields and the Locust file.",
    )
    p.add_argument(
        "--scenario", type=Path, help="scenario file (.yaml/.json), e.g. loadtest/scenarios/ads-32.yaml"
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--url",
        help="load an already running service, e.g. http://127.0.0.1:8000 (loopback only; for a cluster, "
        "kubectl port-forward first)",
    )
    target.add_argument(
        "--bundle",
        type=Path,
        help="start `relevance serve` on this bundle on a free loopback port (default: models/default)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data/homedepot"),
        help="queries and products: a Home Depot folder (pairs.csv + splits.csv) or a generic .jsonl file "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--p99-target-ms", type=float, help="p99 target of a good step (default: the scenario's, else 100)"
    )
    p.add_argument("--out-dir", type=Path, help="where the report and plot go (default: runs/loadtest/NAME)")
    add_set_option(
        p,
        "service setting for a service started here (with the scenario's service_settings), "
        "e.g. --set max_batch_pairs=32",
    )
    steps = p.add_argument_group("step overrides (default: the scenario's step section)")
    for name, help_text in _STEP_OVERRIDES.items():
        kind = int if name in {"max_steps", "refine"} else float
        steps.add_argument(f"--{name.replace('_', '-')}", type=kind, help=help_text)
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument(
        "--check", action="store_true", help="validate the scenario and data, print the traffic, send nothing"
    )
    p.add_argument("--print-schema", action="store_true", help="print the scenario JSON schema and exit")
    args = p.parse_args(argv)
    if not args.print_schema and args.scenario is None:
        p.error("--scenario is required (examples: loadtest/scenarios/)")
    if args.url and args.settings:
        p.error("--set configures a service started here (--bundle); a running --url keeps its own settings")
    return args


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    step = {name: getattr(args, name) for name in _STEP_OVERRIDES if getattr(args, name) is not None}
    if args.p99_target_ms is not None:
        step["p99_target_ms"] = args.p99_target_ms
    out: dict[str, Any] = {"step": step} if step else {}
    if args.seed is not None:
        out["seed"] = args.seed
    return out


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    prefix: str  # path prefix before /relevance
    server_cpu: Callable[[], float | None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.prefix}"


def parse_url(url: str) -> Target:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--url {url}: expected http://HOST:PORT (plain HTTP)")
    if parts.hostname not in LOOPBACK:
        raise ValueError(
            f"--url {url}: the generator only targets loopback hosts ({', '.join(sorted(LOOPBACK))}); "
            "to load a cluster, `kubectl port-forward svc/<release> 8000:80` and pass "
            "--url http://127.0.0.1:8000"
        )
    return Target(parts.hostname, parts.port or 80, parts.path.rstrip("/"))


def wait_ready(target: Target, timeout_s: float = 5.0) -> None:
    try:
        with urllib.request.urlopen(f"{target.url}/readyz", timeout=timeout_s) as reply:
            if reply.status == 200:
                return
            status = str(reply.status)
    except urllib.error.HTTPError as err:
        status = str(err.code)
    except OSError as err:
        status = str(err)
    raise RuntimeError(f"{target.url}/readyz is not ready ({status}): start the service or fix --url")


def measure_step(target: Target, traffic: Traffic, rate_pairs_s: float, phase: str, index: int) -> StepResult:
    """One step: a fresh Zipf draw and Poisson schedule (seeded by the step), the mirrored share sent to
    the shadow path at the same moments as their primaries."""
    scenario = traffic.scenario
    plan = scenario.step
    rps = rate_pairs_s / scenario.mean_services
    n_warm, count = planned_count(rps, plan.duration_s, plan.max_requests, plan.warmup_s)
    seed = scenario.seed + 7919 * (index + 1)
    draws = traffic.draw(np.random.default_rng(seed), count)
    primary_path, shadow_path = target.prefix + PRIMARY_PATH, target.prefix + SHADOW_PATH
    offsets: list[float] = []
    requests: list[bytes] = []
    sent: list[Sent] = []
    warm_entries = 0
    for i, (offset, draw) in enumerate(zip(arrival_offsets(rps, count, scenario.arrivals, seed), draws)):
        for shadow in (False, True) if draw.shadow else (False,):
            offsets.append(offset)
            path = shadow_path if shadow else primary_path
            requests.append(traffic.request(draw, path, target.host, target.port))
            sent.append(Sent(shadow, draw.services, draw.bucket))
        if i + 1 == n_warm:
            warm_entries = len(offsets)

    async def go() -> tuple[Any, int]:
        pool = Pool(target.host, target.port)
        try:
            run = await run_schedule(
                pool, offsets, requests, warm_entries, plan.timeout_s, target.server_cpu, read_reply
            )
            return run, pool.opened
        finally:
            await pool.close()

    run, connections = asyncio.run(go())
    primary = [o for o in run.outcomes if not sent[o.index].shadow]
    mirrored = [o for o in run.outcomes if sent[o.index].shadow]
    wall_s = measured_window(run.window_s, len(primary), rps)
    return StepResult(
        phase=phase,
        offered_rps=rps,
        offered_pairs_s=rps * scenario.mean_services,
        primary=endpoint_stats(primary, sent, wall_s),
        shadow=endpoint_stats(mirrored, sent, wall_s),
        buckets=dict(Counter(sent[o.index].bucket for o in primary)),
        wall_s=wall_s,
        generator_cpu_pct=100 * run.generator_cpu_s / wall_s if wall_s else 0.0,
        server_cpu_pct=100 * run.server_cpu_s / wall_s if run.server_cpu_s is not None and wall_s else None,
        max_send_lag_ms=1000 * run.max_send_lag_s,
        connections=connections,
    )


def _ms(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:.1f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def step_line(s: StepResult) -> str:
    p = s.primary
    shadow = f"  shadow {s.shadow.ok}/{s.shadow.requests} ok" if s.shadow.requests else ""
    server = f"  server CPU {s.server_cpu_pct:.0f}%" if s.server_cpu_pct is not None else ""
    return (
        f"{s.phase:>6} offered {s.offered_pairs_s:7.0f} pairs/s -> {s.achieved_pairs_s:7.0f}  "
        f"p50 {_ms(p.p50_ms):>6}  p95 {_ms(p.p95_ms):>6}  p99 {_ms(p.p99_ms):>6} ms  "
        f"shed {100 * p.shed_share:4.1f}%  errors {100 * p.error_share:4.1f}%  "
        f"cache {_share(p.cache_hit_share):>4}{shadow}  generator CPU {s.generator_cpu_pct:.0f}%{server}  "
        f"{'good' if s.meets else 'BAD'}: {s.why}"
    )


def generator_summary(result: Search, process_cpu_s: float) -> dict[str, Any]:
    pcts = [s.generator_cpu_pct for s in result.steps]
    return {
        "cpu_pct_of_one_core_mean": round(sum(pcts) / len(pcts), 1) if pcts else None,
        "cpu_pct_of_one_core_max": round(max(pcts), 1) if pcts else None,
        "max_send_lag_ms": round(max((s.max_send_lag_ms for s in result.steps), default=0.0), 3),
        "process_cpu_s": round(process_cpu_s, 2),
        "note": "CPU over each step's measured window (getrusage); send lag: how late the generator "
        "sent a request against its schedule, counted in the latencies anyway",
    }


def warnings_of(generator: dict[str, Any]) -> list[str]:
    out = []
    if (generator["cpu_pct_of_one_core_max"] or 0) > GENERATOR_CPU_WARN_PCT:
        out.append(
            f"the generator used up to {generator['cpu_pct_of_one_core_max']:.0f}% of a core: it competes "
            "with the server on this machine; run the generator elsewhere or on a quieter machine"
        )
    if generator["max_send_lag_ms"] > SEND_LAG_WARN_MS:
        out.append(
            f"the generator sent up to {generator['max_send_lag_ms']:.0f} ms late: its latencies include "
            "its own delay (counted, not hidden)"
        )
    return out


def build_report(
    command: str,
    scenario_file: Path,
    scenario: Scenario,
    traffic: Traffic,
    target: dict[str, Any],
    result: Search,
    generator: dict[str, Any],
    plot: str | None,
) -> dict[str, Any]:
    best = result.best
    return {
        "command": command,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"host": platform.node(), "cpu": cpu_description()},
        "scenario_file": str(scenario_file),
        "scenario": scenario.model_dump(mode="json"),
        "traffic": traffic.summary(),
        "target": target,
        "p99_target_ms": scenario.step.p99_target_ms,
        "result": {
            "max_pairs_s": round(best.achieved_pairs_s, 1) if best else None,
            "max_rps": round(best.primary.ok / best.wall_s, 2) if best and best.wall_s else None,
            "at_offered_pairs_s": round(best.offered_pairs_s, 1) if best else None,
            "p99_ms": round(best.primary.p99_ms, 2) if best else None,
            "stopped": result.stopped,
        },
        "generator": generator,
        "warnings": warnings_of(generator),
        "steps": [s.to_json() for s in result.steps],
        "plot": plot,
    }


def markdown(report: dict[str, Any], result: Search) -> str:
    r, t, target = report["result"], report["traffic"], report["target"]
    best = f"{r['max_pairs_s']:.0f} pairs/s" if r["max_pairs_s"] is not None else "no step met the target"
    target_ms = report["p99_target_ms"]
    header = (
        "| phase | offered pairs/s | achieved pairs/s | p50 ms | p95 ms | p99 ms | shed | errors "
        "| cache hits | shadow ok/sent | generator CPU | server CPU | verdict |"
    )
    rows = [header, "| --- |" + " ---: |" * 11 + " --- |"]
    for s in sorted(result.steps, key=lambda s: s.offered_pairs_s):
        p = s.primary
        server = f"{s.server_cpu_pct:.0f}%" if s.server_cpu_pct is not None else "n/a"
        rows.append(
            f"| {s.phase} | {s.offered_pairs_s:.0f} | {s.achieved_pairs_s:.0f} | {_ms(p.p50_ms)} | "
            f"{_ms(p.p95_ms)} | {_ms(p.p99_ms)} | {100 * p.shed_share:.1f}% | {100 * p.error_share:.1f}% | "
            f"{_share(p.cache_hit_share)} | {s.shadow.ok}/{s.shadow.requests} | {s.generator_cpu_pct:.0f}% | "
            f"{server} | {'good' if s.meets else 'bad'}: {s.why} |"
        )
    started = f" (started here on `{target['bundle']}`)" if target["started_here"] else ""
    run_line = (
        f"Run {report['created_utc']} on `{report['machine']['host']}` ({report['machine']['cpu']}) "
        f"against {target['url']}{started}."
    )
    buckets = ", ".join(f"{b or '(none)'} {w:g}" for b, w in t["buckets"].items()) or "none"
    deadline = f"{t['deadline_ms']:g} ms" if t["deadline_ms"] else "none (the service's default)"
    top = max(1, t["queries_in_pool"] // 100)
    traffic_line = (
        f"Traffic: {t['queries_in_pool']} queries, Zipf exponent {t['zipf_exponent']:g} (the {top} most "
        f"popular expected to draw {100 * t['expected_share_of_top_1pct_queries']:.0f}% of requests), "
        f"{t['mean_services_per_request']:g} services per request on average, bucket weights {buckets}, "
        f"shadow share {t['shadow_share']:g}, deadline header {deadline}."
    )
    generator = {k: v for k, v in report["generator"].items() if k != "note"}
    notes = (
        "Latencies are of `POST /relevance` from the scheduled send time; CPU is percent of one core "
        f"over each step's measured window. Generator: {json.dumps(generator)}."
    )
    return "\n".join(
        [
            f"# Load test: {report['scenario']['name']}",
            "",
            run_line,
            "",
            "```bash",
            report["command"],
            "```",
            "",
            traffic_line,
            "",
            f"**Max throughput with p99 <= {target_ms:g} ms: {best}.** Stopped: {r['stopped']}.",
            "",
            *rows,
            "",
            notes,
            *[f"\n**Warning:** {w}." for w in report["warnings"]],
            "",
            *([f"![latency vs throughput]({report['plot']})", ""] if report["plot"] else []),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_schema:
        print(json.dumps(Scenario.model_json_schema(), indent=2))
        return 0
    command = shlex.join(["python", "-m", "loadtest.run", *(sys.argv[1:] if argv is None else argv)])
    try:
        scenario = load_scenario(args.scenario, overrides(args))
        target = parse_url(args.url) if args.url else None
    except (ScenarioError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    bundle = None if target else (args.bundle or Path("models/default"))
    if bundle is not None and not (bundle / "bundle.json").is_file():
        print(
            f"no bundle at {bundle} (expected {bundle / 'bundle.json'}); pass --bundle or --url",
            file=sys.stderr,
        )
        return 2
    try:
        traffic = Traffic.from_data(scenario, args.data)
    except (DataMissing, FileNotFoundError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    print(f"scenario {scenario.name}: {json.dumps(traffic.summary())}", flush=True)
    if args.check:
        plan = scenario.step
        print(
            f"step plan: {plan.start_pairs_s:g} pairs/s + {plan.step_pairs_s:g} per step, up to "
            f"{plan.max_steps} steps and {plan.refine} refinements of ~{plan.step_seconds:g} s each, "
            f"at most {plan.max_total_s:g} s; p99 target {plan.p99_target_ms:g} ms"
        )
        return 0

    out_dir = args.out_dir or Path("runs/loadtest") / scenario.name
    out_dir.mkdir(parents=True, exist_ok=True)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    with ExitStack() as stack:
        if target is None:
            assert bundle is not None
            settings = {"log_level": "warning", **scenario.service_settings, **parse_settings(args.settings)}
            port = free_port()
            try:
                proc = stack.enter_context(
                    running_server(
                        service_command(bundle, port), port, settings_env(settings), out_dir / "service.log"
                    )
                )
            except RuntimeError as err:
                print(err, file=sys.stderr)
                return 1
            pid = proc.pid
            target = Target(HOST, port, "", lambda: process_cpu_seconds(pid))
            target_desc = {
                "url": target.url,
                "started_here": True,
                "bundle": str(bundle),
                "settings": settings,
            }
        else:
            try:
                wait_ready(target)
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

        result = search(measure, plan, on_step=lambda s: print(step_line(s), flush=True))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    process_cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    generator = generator_summary(result, process_cpu)

    plot_name: str | None = PLOT_NAME
    try:
        latency_plot(
            result, plan.p99_target_ms, out_dir / PLOT_NAME, f"{scenario.name}: latency vs throughput"
        )
    except PlotUnavailable as err:
        print(f"no plot: {err}", file=sys.stderr)
        plot_name = None
    report = build_report(
        command, args.scenario, scenario, traffic, target_desc, result, generator, plot_name
    )
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (out_dir / "report.md").write_text(markdown(report, result))
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


if __name__ == "__main__":
    raise SystemExit(main())
