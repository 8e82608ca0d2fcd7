"""Does the service keep its latency promises under overload? Offered loads as multiples of the raw compute rate.

    python -m loadtest.overload --bundle models/default --data ../shared/data/homedepot --out-dir runs/overload

In one run: the raw ORT compute rate ``R`` (pairs/s, the service's own run plan) of the scenario's
pairs, measured before the server starts; then the service with its default settings, offered open-loop
Poisson traffic (``loadtest/scenarios/overload.json``: 1-128 services per request, Zipf-popular
queries so the cache plays its real part, ``X-Deadline-Ms`` on every request) at multiples of ``R``.
Per load it reports goodput (pairs answered inside their deadline, measured from the scheduled send
time, per second), the shed rate, the admitted-late rate (200s after their deadline), the p99 of
refusals and of /healthz and /metrics probes sent during the load, the server's peak RSS and the
generator's own CPU; after each load, how long until normal service returns. Then lone requests of
1-256 services on the idle server without a header: measured latency against the server's estimate
(``X-Estimated-Ms``). Promise checks are printed as PASS/FAIL. Writes report.json, report.md and
overload.png to --out-dir. Run it on a quiet machine: server and generator share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import shlex
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from loadtest.openloop import Outcome, Pool, arrival_offsets, run_schedule
from loadtest.raw import raw_compute_rate
from loadtest.report import cpu_description
from loadtest.scenario import load_scenario, parse_scenario
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
from loadtest.traffic import Draw, Traffic

DEFAULT_SCENARIO = Path(__file__).parent / "scenarios" / "overload.json"
PROBE_PATHS = ("/healthz", "/metrics")
LONE_SIZES = (1, 8, 32, 64, 128, 256)


@dataclass
class LoadStep:
    multiple: float
    offered_pairs_s: float
    requests: int
    goodput_pairs_s: float
    ok_share: float
    shed_share: float
    late_share: float  # of the 200s, those received after their deadline
    error_share: float
    ok_p99_ms: float
    refusal_p99_ms: float
    probe_p99_ms: float
    peak_rss_mb: float
    generator_cpu_share: float  # generator CPU seconds per second of the window
    server_cpu_share: float | None
    recovery_s: float | None  # load end -> first of 3 consecutive on-time 200s (None: not within the limit)


def _p99_ms(values: list[float]) -> float:
    return float(np.percentile(values, 99) * 1000) if values else 0.0


def step_metrics(
    outcomes: list[Outcome], pairs: list[int], probes: set[int], deadline_s: float, window_s: float
) -> dict[str, float]:
    """The numbers of one load step from its outcomes (``pairs[i]``: pairs of request ``i``; indices in
    ``probes`` are /healthz and /metrics probes, not traffic)."""
    traffic = [o for o in outcomes if o.index not in probes]
    ok = [o for o in traffic if o.status == 200]
    shed = [o for o in traffic if o.status == 503]
    on_time = [o for o in ok if o.latency_s <= deadline_s]
    n = max(1, len(traffic))
    return {
        "requests": len(traffic),
        "goodput_pairs_s": sum(pairs[o.index] for o in on_time) / window_s if window_s > 0 else 0.0,
        "ok_share": len(ok) / n,
        "shed_share": len(shed) / n,
        "late_share": (len(ok) - len(on_time)) / max(1, len(ok)),
        "error_share": (len(traffic) - len(ok) - len(shed)) / n,
        "ok_p99_ms": _p99_ms([o.latency_s for o in ok]),
        "refusal_p99_ms": _p99_ms([o.latency_s for o in shed]),
        "probe_p99_ms": _p99_ms([o.latency_s for o in outcomes if o.index in probes]),
    }


def promise_checks(steps: list[LoadStep], lone: list[dict]) -> list[tuple[str, bool]]:
    """The issue's promises, for the loads at 2x and above: (line, passed)."""
    out = []
    for s in steps:
        if s.multiple < 2:
            continue
        best_below = max((t.goodput_pairs_s for t in steps if t.multiple < s.multiple), default=0.0)
        out += [
            (f"{s.multiple:g}x: admitted-late {100 * s.late_share:.2f}% <= 1%", s.late_share <= 0.01),
            (f"{s.multiple:g}x: refusal p99 {s.refusal_p99_ms:.1f} ms <= 20 ms", s.refusal_p99_ms <= 20),
            (
                f"{s.multiple:g}x: goodput {s.goodput_pairs_s:.0f} >= 0.8 x best below ({best_below:.0f})",
                s.goodput_pairs_s >= 0.8 * best_below,
            ),
            (
                f"{s.multiple:g}x: recovery {s.recovery_s if s.recovery_s is not None else 'none'} s <= 1 s",
                s.recovery_s is not None and s.recovery_s <= 1.0,
            ),
        ]
    out.append(("lone requests 1-256 services without a header: all 200", all(r["all_200"] for r in lone)))
    return out


class RssSampler:
    """Peak resident memory of a process, sampled from /proc every ``interval_s`` in a thread."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read_kb(self) -> int:
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                return next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_kb = max(self.peak_kb, self._read_kb())

    def __enter__(self) -> RssSampler:
        self.peak_kb = self._read_kb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _get(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()


async def _recovery(pool: Pool, probe: bytes, deadline_s: float, limit_s: float = 5.0) -> float | None:
    """Seconds from now until the first of 3 consecutive probes is answered 200 within its deadline."""
    started = time.monotonic()
    streak_start, streak = None, 0
    while (now := time.monotonic()) - started < limit_s:
        try:
            reply = await pool.request(probe, timeout=limit_s)
            good = reply.status == 200 and time.monotonic() - now <= deadline_s
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            good = False
        if good:
            streak_start = streak_start if streak else now
            streak += 1
            if streak == 3:
                return round(streak_start - started, 3)
        else:
            streak = 0
        await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - now)))
    return None


async def _load_step(
    pool: Pool, traffic: Traffic, port: int, multiple: float, raw_pairs_s: float, args: argparse.Namespace,
    pid: int, seed: int,
) -> LoadStep:
    scenario = traffic.scenario
    rate_rps = multiple * raw_pairs_s / scenario.mean_services
    count = min(args.max_requests, max(1, int(rate_rps * args.duration)))
    rng = np.random.default_rng(seed)
    draws = traffic.draw(rng, count)
    offsets = arrival_offsets(rate_rps, count, scenario.arrivals, seed)
    # probes of /healthz and /metrics, a few per second through the load
    n_probes = int(args.duration * args.probes_per_s)
    probe_offsets = [(i + 0.5) * args.duration / max(1, n_probes) for i in range(n_probes)]
    schedule = sorted(
        [(t, traffic.request(d, "/relevance", HOST, port), d.services) for t, d in zip(offsets, draws, strict=True)]
        + [(t, _get(PROBE_PATHS[i % 2], port), 0) for i, t in enumerate(probe_offsets)],
        key=lambda item: item[0],
    )
    probes = {i for i, item in enumerate(schedule) if item[2] == 0}
    with RssSampler(pid) as rss:
        run = await run_schedule(
            pool, [s[0] for s in schedule], [s[1] for s in schedule], 0, args.timeout,
            server_cpu=lambda: process_cpu_seconds(pid),
        )
        deadline_s = scenario.deadline_ms / 1000
        probe = traffic.request(Draw(0, min(32, scenario.max_services), "", False), "/relevance", HOST, port)
        recovery = await _recovery(pool, probe, deadline_s)
    window = max(run.window_s, args.duration)
    m = step_metrics(run.outcomes, [s[2] for s in schedule], probes, deadline_s, window)
    return LoadStep(
        multiple=multiple,
        offered_pairs_s=multiple * raw_pairs_s,
        peak_rss_mb=rss.peak_kb / 1024,
        generator_cpu_share=run.generator_cpu_s / window,
        server_cpu_share=run.server_cpu_s / window if run.server_cpu_s is not None else None,
        recovery_s=recovery,
        **m,
    )


async def _lone(pool: Pool, traffic: Traffic, port: int, repeats: int) -> list[dict]:
    """Lone requests on the idle server, no deadline header; each a different query (no cache hits)."""
    rows = []
    rank = 0
    for n in LONE_SIZES:
        latencies, estimates, statuses = [], [], []
        for _ in range(repeats):
            rank = (rank + 1) % len(traffic.queries)
            raw = traffic.request(Draw(rank, n, "", False), "/relevance", HOST, port)
            raw = raw.replace(b"X-Deadline-Ms", b"X-Ignored-Deadline")  # no header: the default budget
            started = time.monotonic()
            reply = await pool.request(raw, timeout=30)
            latencies.append(time.monotonic() - started)
            statuses.append(reply.status)
            if "x-estimated-ms" in reply.headers:
                estimates.append(float(reply.headers["x-estimated-ms"]))
            await asyncio.sleep(0.2)
        p50 = float(np.median(latencies) * 1000)
        est = float(np.median(estimates)) if estimates else None
        rows.append({
            "services": n, "p50_ms": round(p50, 1), "p90_ms": round(float(np.percentile(latencies, 90) * 1000), 1),
            "estimate_ms": round(est, 1) if est is not None else None,
            "measured_over_estimate": round(p50 / est, 2) if est else None,
            "statuses": sorted(set(statuses)), "all_200": all(s == 200 for s in statuses),
        })
        print(f"lone {n:4d} services: p50 {p50:6.1f} ms, estimate {est} ms, statuses {sorted(set(statuses))}",
              flush=True)
    return rows


def markdown(report: dict) -> str:
    lines = [
        f"Command: `{report['command']}`; {report['date']}; {report['machine']}.",
        (
            f"Raw compute rate R = {report['raw_pairs_s']:.0f} pairs/s (ORT, the service's sorted runs of "
            f"{report['max_run_pairs']}, this traffic's pairs); traffic: "
            f"{report['traffic']['mean_services_per_request']} services per request on average "
            f"({report['traffic']['services_distribution']}), Zipf {report['traffic']['zipf_exponent']} over "
            f"{report['traffic']['queries_in_pool']} queries, `X-Deadline-Ms: {report['traffic']['deadline_ms']:g}`, "
            f"{report['duration_s']:g} s per load."
        ),
        "",
        (
            "| offered | pairs/s | requests | goodput pairs/s | answered | shed | admitted late | errors "
            "| p99 answered ms | p99 refusal ms | p99 /healthz,/metrics ms | peak RSS MB | generator CPU "
            "| server CPU | recovery s |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in report["steps"]:
        server_cpu = "" if s["server_cpu_share"] is None else f"{100 * s['server_cpu_share']:.0f}%"
        recovery = ">5" if s["recovery_s"] is None else f"{s['recovery_s']:.2f}"
        lines.append(
            f"| {s['multiple']:g}x R | {s['offered_pairs_s']:.0f} | {s['requests']} | {s['goodput_pairs_s']:.0f} "
            f"| {100 * s['ok_share']:.1f}% | {100 * s['shed_share']:.1f}% | {100 * s['late_share']:.2f}% "
            f"| {100 * s['error_share']:.1f}% | {s['ok_p99_ms']:.0f} | {s['refusal_p99_ms']:.1f} "
            f"| {s['probe_p99_ms']:.1f} | {s['peak_rss_mb']:.0f} | {100 * s['generator_cpu_share']:.0f}% "
            f"| {server_cpu} | {recovery} |"
        )
    lines += ["", "Lone requests, idle server, no `X-Deadline-Ms` (each a new query, so no cache hits):", "",
              "| services | p50 ms | p90 ms | estimate ms (X-Estimated-Ms) | p50 / estimate | statuses |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in report["lone"]:
        lines.append(f"| {r['services']} | {r['p50_ms']} | {r['p90_ms']} | {r['estimate_ms']} "
                     f"| {r['measured_over_estimate']} | {', '.join(map(str, r['statuses']))} |")
    lines += ["", "Promises (loads at 2x R and above):", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {line}" for line, ok in report["promises"]]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps = report["steps"]
    x = [s["multiple"] for s in steps]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    left.plot(x, [s["offered_pairs_s"] for s in steps], "--", color="grey", label="offered")
    left.plot(x, [s["goodput_pairs_s"] for s in steps], "o-", color="tab:green", label="goodput (on time)")
    left.axhline(report["raw_pairs_s"], color="tab:blue", alpha=0.5, label="raw compute rate R")
    left.set(xscale="log", yscale="log", xlabel="offered load / R", ylabel="pairs/s", title="goodput")
    right.plot(x, [100 * s["shed_share"] for s in steps], "o-", color="tab:orange", label="shed (503)")
    right.plot(x, [100 * s["late_share"] for s in steps], "o-", color="tab:red", label="admitted late")
    right.axhline(1, color="tab:red", alpha=0.3, linestyle=":")
    right.set(xscale="log", xlabel="offered load / R", ylabel="% of requests", title="shed and late")
    for ax in (left, right):
        ax.set_xticks(x, [f"{m:g}x" for m in x])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"relevance service under overload, X-Deadline-Ms {report['traffic']['deadline_ms']:g}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtest.overload", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, default=Path("models/default"), help="bundle the service serves")
    p.add_argument("--data", type=Path, default=Path("../shared/data/homedepot"), help="queries and products")
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO, help="traffic (loadtest/scenario.py)")
    p.add_argument("--multiples", default="0.25,0.5,1,2,5", help="offered loads as multiples of R, comma-separated")
    p.add_argument("--duration", type=float, default=12.0, help="seconds of load per multiple")
    p.add_argument("--max-requests", type=int, default=4000, help="requests per load at most")
    p.add_argument("--probes-per-s", type=float, default=4.0, help="/healthz and /metrics probes per second")
    p.add_argument("--raw-seconds", type=float, default=4.0, help="seconds to time the raw compute rate")
    p.add_argument("--lone-repeats", type=int, default=15, help="requests per size in the lone table")
    p.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, seconds")
    p.add_argument("--out-dir", type=Path, default=Path("runs/overload"), help="report.json, report.md, overload.png")
    add_set_option(p, "service setting for this run (default: the service's defaults)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenario = load_scenario(args.scenario)
    traffic = Traffic.from_data(scenario, args.data)
    lone_traffic = Traffic(parse_scenario({**scenario.model_dump(), "services": max(LONE_SIZES)}), traffic._own)
    settings = {"log_level": "warning", **parse_settings(args.settings)}
    max_run_pairs = int(settings.get("max_run_pairs", 16))
    sample = traffic.draw(np.random.default_rng(scenario.seed), 64)
    raw = raw_compute_rate(
        args.bundle,
        [(traffic.queries[d.rank], [s["title"] for s in traffic.candidates(d.rank)[: d.services]]) for d in sample],
        None, 0, args.raw_seconds, run_pairs=(max_run_pairs,),
    )
    raw_pairs_s = raw.planned[max_run_pairs][0]
    print(f"raw compute rate R = {raw_pairs_s:.0f} pairs/s (runs of {max_run_pairs})", flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    steps: list[LoadStep] = []

    async def drive(pid: int) -> list[dict]:
        pool = Pool(HOST, port)
        try:
            lone = await _lone(pool, lone_traffic, port, args.lone_repeats)
            for k, multiple in enumerate(float(m) for m in args.multiples.split(",")):
                step = await _load_step(pool, traffic, port, multiple, raw_pairs_s, args, pid, scenario.seed + k)
                steps.append(step)
                print(f"{multiple:g}x R: goodput {step.goodput_pairs_s:.0f} pairs/s, shed {100 * step.shed_share:.1f}%, "
                      f"late {100 * step.late_share:.2f}%, refusal p99 {step.refusal_p99_ms:.1f} ms, "
                      f"probe p99 {step.probe_p99_ms:.1f} ms, RSS {step.peak_rss_mb:.0f} MB, recovery {step.recovery_s}",
                      flush=True)
                await asyncio.sleep(1.0)
            return lone
        finally:
            await pool.close()

    with running_server(service_command(args.bundle, port), port, settings_env(settings),
                        args.out_dir / "server.log") as proc:
        lone = asyncio.run(drive(proc.pid))
    report = {
        "command": shlex.join(["python", "-m", "loadtest.overload", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "machine": cpu_description(),
        "raw_pairs_s": raw_pairs_s,
        "max_run_pairs": max_run_pairs,
        "duration_s": args.duration,
        "traffic": traffic.summary(),
        "settings": settings,
        "steps": [asdict(s) for s in steps],
        "lone": lone,
    }
    report["promises"] = promise_checks(steps, lone)
    (args.out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (args.out_dir / "report.md").write_text(markdown(report))
    plot(report, args.out_dir / "overload.png")
    print(markdown(report))
    return 0 if all(ok for _, ok in report["promises"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
