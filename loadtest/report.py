"""The load tests' one report writer: the printed lines, markdown tables and JSON of every tool.

The shared pieces (number formats, markdown tables, the command block, machine and settings lines,
JSON without infinities) come first; then each tool's layout: the benchmark's summary and table
(``loadtest.bench``), a scenario run's report.json and report.md (``loadtest.run``) and the overload
report (``loadtest.overload``). ``loadtest.raw`` and ``loadtest.queueing`` print tables with
:func:`table`. Plots are :mod:`loadtest.plot`'s.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadtest.engine import RateResult
    from loadtest.overload import LoadStep
    from loadtest.raw import RawResult
    from loadtest.scenario import Scenario
    from loadtest.search import Search, StepResult, Sweep
    from loadtest.traffic import Traffic

# Measured by the issue on this machine class (MiniLM-L6 INT8, 32 services per request); not re-measured.
INFINITY_EMB_PAIRS_S = 100.0
# Above these the generator competes with the server for the cores: its numbers are suspect.
GENERATOR_CPU_WARN_PCT = 50.0
SEND_LAG_WARN_MS = 10.0


# -- shared pieces ------------------------------------------------------------------------------------


def ms(value: float) -> str:
    """A latency in ms; ``inf`` when nothing was measured."""
    return "inf" if math.isinf(value) else f"{value:.1f}"


def percent(value: float | None, digits: int = 0) -> str:
    """A value already in percent; ``n/a`` when there is none."""
    return "n/a" if value is None else f"{value:.{digits}f}%"


def share(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage; ``n/a`` when there is none."""
    return percent(None if value is None else 100 * value, digits)


def or_na(value: object, fmt: str = "{}") -> str:
    return "n/a" if value is None else fmt.format(value)


def table(header: Sequence[str], align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table's lines; ``align`` has one letter a column, ``l`` (left) or ``r`` (right)."""
    rule = {"l": "---", "r": "---:"}
    return [_row(header), _row(rule[a] for a in align), *(_row(r) for r in rows)]


def _row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def code_block(command: str) -> list[str]:
    return ["```bash", command, "```"]


def settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in sorted(settings.items())) or "defaults"


def utc_now(fmt: str) -> str:
    return datetime.now(UTC).strftime(fmt)


def cpu_description(flags: Sequence[str] = ()) -> str:
    """'2 CPUs, <model name>', followed by which of ``flags`` (cpuinfo names) the CPU has."""
    text = ""
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
    except OSError:
        pass
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    found = [f for f in flags if f in text.split()]
    extras = f" ({', '.join(found) or 'none of ' + ', '.join(flags)})" if flags else ""
    return f"{os.cpu_count()} CPUs{', ' + model if model else ''}{extras}"


def json_ready(value: object) -> object:
    """JSON has no infinity: an infinite latency (nothing answered) becomes null; floats are rounded."""
    if isinstance(value, float):
        return None if math.isinf(value) or math.isnan(value) else round(value, 3)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")


# -- loadtest.bench -----------------------------------------------------------------------------------


def rate_line(name: str, r: RateResult, target_ms: float) -> str:
    return (
        f"{name:>8} offered {r.offered_pairs_s:7.0f} pairs/s -> achieved {r.achieved_pairs_s:7.0f}  "
        f"p50 {ms(r.percentile_ms(50)):>6} ms  p99 {ms(r.percentile_ms(99)):>6} ms  "
        f"p99(all) {ms(r.percentile_ms(99, True)):>6} ms  failed {100 * r.failure_rate:4.1f}%  "
        f"server CPU {percent(r.server_cpu_pct):>5}  generator CPU {percent(r.generator_cpu_pct):>4}  "
        f"{'meets' if r.meets(target_ms) else 'misses'} p99<={target_ms:.0f}"
    )


def raw_line(raw: RawResult) -> str:
    return (
        f"raw ORT compute ({raw.precision}, padded batches of {raw.batch_pairs}): "
        f"{raw.pairs_per_s:.0f} pairs/s ({100 * raw.padding_share:.0f}% of padded tokens are padding)"
    )


def _best_line(name: str, pairs_s: float | None, target_ms: float) -> str:
    best = f"{pairs_s:.0f} pairs/s" if pairs_s is not None else "no offered rate met it"
    return f"{name}, best at p99<={target_ms:.0f} ms: {best}"


def summary_lines(
    raw: RawResult | None, ratios: dict[str, float], naive: bool, target_ms: float
) -> list[str]:
    """The benchmark's findings from :func:`loadtest.bench.ratios`; ``naive``: the baseline was measured."""
    r = ratios
    lines = []
    if raw is not None:
        lines.append(raw_line(raw))
        for k, (rate, padding) in raw.planned.items():
            lines.append(
                f"raw ORT compute as the batcher plans a lone request (sorted runs of {k}): {rate:.0f} pairs/s "
                f"({100 * padding:.0f}% padding; {rate / raw.pairs_per_s:.2f}x padded)"
            )
        if "queueing_ceiling_pairs_s" in r:
            lines.append(
                f"queueing ceiling at that compute rate (M/D/1, Poisson arrivals, p99<={target_ms:.0f} ms): "
                f"{r['queueing_ceiling_pairs_s']:.0f} pairs/s"
            )
    lines.append(_best_line("service", r.get("service_pairs_s"), target_ms))
    if naive:
        lines.append(_best_line("naive per-request baseline", r.get("naive_pairs_s"), target_ms))
    for key, label in [
        ("service_vs_raw", "service / raw compute"),
        ("service_vs_planned", "service / planned-run compute"),
        ("service_vs_ceiling", "service / queueing ceiling"),
        ("naive_vs_raw", "naive / raw compute"),
        ("service_vs_naive", "service / naive"),
        (
            "service_vs_infinity_emb",
            f"service / infinity-emb ({INFINITY_EMB_PAIRS_S:.0f} pairs/s, issue's figure)",
        ),
    ]:
        if key in r:
            lines.append(f"{label}: {r[key]:.2f}x")
    return lines


def bench_markdown(
    command: str,
    settings: dict[str, str],
    bundle_desc: str,
    summary: list[str],
    sweeps: list[Sweep],
    services: int,
    arrivals: str,
) -> str:
    """The benchmark's table: ``summary`` (:func:`summary_lines`) and every measured rate of ``sweeps``."""
    rows = table(
        [
            "server", "offered pairs/s", "achieved pairs/s", "p50 ms", "p99 ms", "p99 ms (failures = inf)",
            "failed", "server CPU", "generator CPU",
        ],
        "l" + "r" * 8,
        [
            [
                sweep.name, f"{res.offered_pairs_s:.0f}", f"{res.achieved_pairs_s:.0f}", ms(res.percentile_ms(50)),
                ms(res.percentile_ms(99)), ms(res.percentile_ms(99, True)), f"{100 * res.failure_rate:.1f}%",
                percent(res.server_cpu_pct), percent(res.generator_cpu_pct),
            ]
            for sweep in sweeps
            for res in sweep.results
        ],
    )  # fmt: skip
    return "\n".join(
        [
            "# Service benchmark",
            "",
            (
                f"Measured {utc_now('%Y-%m-%d %H:%M')} UTC on `{platform.node()}` "
                f"({cpu_description()}), bundle {bundle_desc}, {services} services per request, "
                f"{arrivals} arrivals (open loop: latency from the scheduled send time)."
            ),
            "",
            *code_block(command),
            "",
            f"Service settings: {settings_text(settings)}.",
            "",
            *[f"- {line}" for line in summary],
            "",
            *rows,
            "",
            (
                "CPU columns are percent of one core over the measured window (the server's from /proc, the "
                "generator's from getrusage). infinity-emb's figure is the issue's measurement on the same "
                "machine class, not re-measured by this script."
            ),
            "",
        ]
    )


# -- loadtest.run -------------------------------------------------------------------------------------


def step_json(s: StepResult) -> Any:
    """One step of report.json: every field, the endpoints' shares and the achieved request rate."""
    out = asdict(s)
    for name in ("primary", "shadow"):
        stats = getattr(s, name)
        out[name]["error_share"] = round(stats.error_share, 5)
        out[name]["shed_share"] = round(stats.shed_share, 5)
    out["achieved_rps"] = s.primary.ok / s.wall_s if s.wall_s else 0.0
    return json_ready(out)


def run_step_line(s: StepResult) -> str:
    p = s.primary
    shadow = f"  shadow {s.shadow.ok}/{s.shadow.requests} ok" if s.shadow.requests else ""
    server = f"  server CPU {s.server_cpu_pct:.0f}%" if s.server_cpu_pct is not None else ""
    return (
        f"{s.phase:>6} offered {s.offered_pairs_s:7.0f} pairs/s -> {s.achieved_pairs_s:7.0f}  "
        f"p50 {ms(p.p50_ms):>6}  p95 {ms(p.p95_ms):>6}  p99 {ms(p.p99_ms):>6} ms  "
        f"shed {100 * p.shed_share:4.1f}%  errors {100 * p.error_share:4.1f}%  "
        f"cache {share(p.cache_hit_share, 0):>4}{shadow}  generator CPU {s.generator_cpu_pct:.0f}%{server}  "
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


def generator_warnings(generator: dict[str, Any]) -> list[str]:
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


def run_report(
    command: str,
    scenario_file: Path,
    scenario: Scenario,
    traffic: Traffic,
    target: dict[str, Any],
    result: Search,
    generator: dict[str, Any],
    plot: str | None,
) -> dict[str, Any]:
    """A scenario run's report.json."""
    best = result.best
    return {
        "command": command,
        "created_utc": utc_now("%Y-%m-%dT%H:%M:%SZ"),
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
        "warnings": generator_warnings(generator),
        "steps": [step_json(s) for s in result.steps],
        "plot": plot,
    }


def run_markdown(report: dict[str, Any], result: Search) -> str:
    """A scenario run's report.md, from its report.json and its steps."""
    r, t, target = report["result"], report["traffic"], report["target"]
    best = f"{r['max_pairs_s']:.0f} pairs/s" if r["max_pairs_s"] is not None else "no step met the target"
    target_ms = report["p99_target_ms"]
    rows = table(
        [
            "phase", "offered pairs/s", "achieved pairs/s", "p50 ms", "p95 ms", "p99 ms", "shed", "errors",
            "cache hits", "shadow ok/sent", "generator CPU", "server CPU", "verdict",
        ],
        "l" + "r" * 11 + "l",
        [
            [
                s.phase, f"{s.offered_pairs_s:.0f}", f"{s.achieved_pairs_s:.0f}", ms(s.primary.p50_ms),
                ms(s.primary.p95_ms), ms(s.primary.p99_ms), f"{100 * s.primary.shed_share:.1f}%",
                f"{100 * s.primary.error_share:.1f}%", share(s.primary.cache_hit_share, 0),
                f"{s.shadow.ok}/{s.shadow.requests}", percent(s.generator_cpu_pct), percent(s.server_cpu_pct),
                f"{'good' if s.meets else 'bad'}: {s.why}",
            ]
            for s in sorted(result.steps, key=lambda s: s.offered_pairs_s)
        ],
    )  # fmt: skip
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
            *code_block(report["command"]),
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


# -- loadtest.overload --------------------------------------------------------------------------------


def overload_step_line(s: LoadStep) -> str:
    """One load of the overload benchmark, printed as it ends."""
    return (
        f"{s.multiple:g}x R ({s.offered_pairs_s:.0f} pairs/s, {s.requests} requests): goodput "
        f"{s.goodput_pairs_s:.0f} pairs/s, shed {share(s.shed_share)}, late {share(s.late_share, 2)}, errors "
        f"{share(s.error_share)}, p99 answered {or_na(s.answered_p99_ms)} ms, refusal "
        f"{or_na(s.refusal_p99_ms)} ms, /healthz {or_na(s.healthz_p99_ms)} ms, /metrics "
        f"{or_na(s.metrics_p99_ms)} ms, RSS {s.peak_rss_mb:.0f} MB, recovery {or_na(s.recovery_s)} s"
    )


def overload_markdown(report: dict[str, Any], recovery_limit_s: float) -> str:
    """The overload benchmark's report.md, from its report.json; a load whose service did not recover within
    ``recovery_limit_s`` shows ``>limit``."""
    t = report["traffic"]
    lines = [
        f"Command: `{report['command']}`  ",
        f"Measured {report['date']} on {report['machine']}; service settings: {settings_text(report['settings'])}.",
        "",
        (
            f"R = {report['raw_pairs_s']:.0f} pairs/s: raw ORT compute of this traffic's pairs in the service's "
            f"sorted runs of {report['max_run_pairs']}, measured before the server started. Traffic: open-loop "
            f"{report['arrivals']}, {t['mean_services_per_request']:g} services per request on average "
            f"({', '.join(f'{k}: {w:g}' for k, w in t['services_distribution'].items())}), Zipf "
            f"{t['zipf_exponent']:g} over {t['queries_in_pool']} queries, `X-Deadline-Ms: {t['deadline_ms']:g}` "
            f"on every request, {report['duration_s']:g} s per load (at most {report['max_requests']} requests)."
        ),
        "",
    ]
    lines += table(
        [
            "offered", "pairs/s", "requests", "goodput pairs/s", "answered", "shed", "admitted late", "errors",
            "cache hits", "p99 answered ms", "p99 refusal ms", "p99 /healthz ms", "p99 /metrics ms",
            "peak RSS MB", "generator CPU", "server CPU", "recovery s",
        ],
        "l" + "r" * 16,
        [
            [
                f"{s['multiple']:g}x R", f"{s['offered_pairs_s']:.0f}", s["requests"], f"{s['goodput_pairs_s']:.0f}",
                share(s["answered_share"]), share(s["shed_share"]), share(s["late_share"], 2),
                share(s["error_share"]), share(s["cache_hit_share"], 0), or_na(s["answered_p99_ms"], "{:.0f}"),
                or_na(s["refusal_p99_ms"], "{:.1f}"), or_na(s["healthz_p99_ms"], "{:.1f}"),
                or_na(s["metrics_p99_ms"], "{:.1f}"), f"{s['peak_rss_mb']:.0f}", share(s["generator_cpu_share"], 0),
                share(s["server_cpu_share"], 0),
                f">{recovery_limit_s:g}" if s["recovery_s"] is None else f"{s['recovery_s']:.2f}",
            ]
            for s in report["steps"]
        ],
    )  # fmt: skip
    refusals = [
        f"{s['multiple']:g}x R: "
        + ", ".join(f"`{code}` {r['count']} (p99 {r['p99_ms']} ms)" for code, r in s["refusals"].items())
        for s in report["steps"]
        if s["refusals"]
    ]
    if refusals:
        lines += ["", "Refusals (503) by error code: " + "; ".join(refusals) + "."]
    latch = report.get("latch")
    if latch:
        small, large = latch["small"], latch["large"]
        lines += [
            "",
            (
                f"Latch sequence on the fresh server, no `X-Deadline-Ms` (each a new query): {small['requests']} "
                f"requests of {small['services']} services at {small['rate_rps']:g}/s (statuses "
                f"{', '.join(map(str, small['statuses']))}, p50 {or_na(small['p50_ms'])} ms), then "
                f"{large['requests']} lone requests of {large['services']} services {large['gap_s']:g} s apart "
                f"(statuses {', '.join(map(str, large['statuses']))}, p50 {or_na(large['p50_ms'])} ms)."
            ),
        ]
    lines += [
        "",
        (
            "Lone requests on the idle server without `X-Deadline-Ms` (each a new query, so no cache hits; "
            f"{report['lone_repeats']} per size, one at a time):"
        ),
        "",
    ]
    lines += table(
        ["services", "p50 ms", "p90 ms", "estimate ms (`X-Estimated-Ms`)", "p50 / estimate", "statuses"],
        "rrrrrl",
        [
            [
                r["services"], r["p50_ms"], r["p90_ms"], or_na(r["estimate_ms"]), or_na(r["measured_over_estimate"]),
                ", ".join(map(str, r["statuses"])),
            ]
            for r in report["lone"]
        ],
    )  # fmt: skip
    lines += ["", "Promises (the latch sequence, the loads at 2x R and above, the lone table):", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {line}" for line, ok in report["promises"]]
    return "\n".join(lines) + "\n"


def write_marked_block(doc: Path, name: str, block: str) -> None:
    """Replace the block between ``<!-- NAME begin -->`` and ``<!-- NAME end -->`` in ``doc`` (append it,
    markers included, where there is none), keeping the rest of the file."""
    begin, end = f"<!-- {name} begin -->", f"<!-- {name} end -->"
    text = doc.read_text() if doc.is_file() else ""
    section = f"{begin}\n{block.rstrip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text)
