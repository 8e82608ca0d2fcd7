"""The benchmark's printed summary and its markdown table."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loadtest.openloop import RateResult
from loadtest.queueing import max_utilisation
from loadtest.raw import RawResult

# Measured by the issue on this machine class (MiniLM-L6 INT8, 32 services per request); not re-measured.
INFINITY_EMB_PAIRS_S = 100.0


@dataclass
class Sweep:
    name: str
    results: list[RateResult] = field(default_factory=list)

    def best(self, p99_target_ms: float) -> RateResult | None:
        """The highest achieved throughput among rates whose p99 (failures counted) meets the target."""
        good = [r for r in self.results if r.meets(p99_target_ms)]
        return max(good, key=lambda r: r.achieved_pairs_s) if good else None


def _ms(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def rate_line(name: str, r: RateResult, target_ms: float) -> str:
    return (
        f"{name:>8} offered {r.offered_pairs_s:7.0f} pairs/s -> achieved {r.achieved_pairs_s:7.0f}  "
        f"p50 {_ms(r.percentile_ms(50)):>6} ms  p99 {_ms(r.percentile_ms(99)):>6} ms  "
        f"p99(all) {_ms(r.percentile_ms(99, True)):>6} ms  failed {100 * r.failure_rate:4.1f}%  "
        f"server CPU {_pct(r.server_cpu_pct):>5}  generator CPU {_pct(r.generator_cpu_pct):>4}  "
        f"{'meets' if r.meets(target_ms) else 'misses'} p99<={target_ms:.0f}"
    )


def ratios(raw: RawResult | None, service: Sweep, naive: Sweep | None, target_ms: float) -> dict[str, float]:
    out: dict[str, float] = {}
    # the bench plans with the service's max_run_pairs only
    planned = next(iter(raw.planned.values()))[0] if raw is not None and raw.planned else None
    if planned:
        out["queueing_ceiling_pairs_s"] = queueing_ceiling(planned, raw.batch_pairs, target_ms)
    best = service.best(target_ms)
    if best is not None:
        out["service_pairs_s"] = best.achieved_pairs_s
        out["service_vs_infinity_emb"] = best.achieved_pairs_s / INFINITY_EMB_PAIRS_S
        if raw is not None:
            out["service_vs_raw"] = best.achieved_pairs_s / raw.pairs_per_s
            if planned:
                out["service_vs_planned"] = best.achieved_pairs_s / planned
                if ceiling := out["queueing_ceiling_pairs_s"]:
                    out["service_vs_ceiling"] = best.achieved_pairs_s / ceiling
    if naive is not None and (naive_best := naive.best(target_ms)) is not None:
        out["naive_pairs_s"] = naive_best.achieved_pairs_s
        if raw is not None:
            out["naive_vs_raw"] = naive_best.achieved_pairs_s / raw.pairs_per_s
        if best is not None:
            out["service_vs_naive"] = best.achieved_pairs_s / naive_best.achieved_pairs_s
    return out


def queueing_ceiling(pairs_s: float, pairs_per_request: int, target_ms: float) -> float:
    """The most pairs/s any single server computing at ``pairs_s`` can carry within the p99 target
    (M/D/1 with Poisson arrivals, :mod:`loadtest.queueing`)."""
    return pairs_s * max_utilisation(pairs_per_request / pairs_s, target_ms / 1000)


def _best_line(name: str, pairs_s: float | None, target_ms: float) -> str:
    best = f"{pairs_s:.0f} pairs/s" if pairs_s is not None else "no offered rate met it"
    return f"{name}, best at p99<={target_ms:.0f} ms: {best}"


def summary_lines(raw: RawResult | None, service: Sweep, naive: Sweep | None, target_ms: float) -> list[str]:
    r = ratios(raw, service, naive, target_ms)
    lines = []
    if raw is not None:
        lines.append(
            f"raw ORT compute ({raw.precision}, padded batches of {raw.batch_pairs}): "
            f"{raw.pairs_per_s:.0f} pairs/s ({100 * raw.padding_share:.0f}% of padded tokens are padding)"
        )
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
    if naive is not None:
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


def markdown(
    command: str,
    settings: dict[str, str],
    bundle_desc: str,
    raw: RawResult | None,
    service: Sweep,
    naive: Sweep | None,
    target_ms: float,
    services: int,
    arrivals: str,
) -> str:
    rows = [
        (
            "| server | offered pairs/s | achieved pairs/s | p50 ms | p99 ms | p99 ms (failures = inf) "
            "| failed | server CPU | generator CPU |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for sweep in [service, *([naive] if naive else [])]:
        for res in sweep.results:
            rows.append(
                f"| {sweep.name} | {res.offered_pairs_s:.0f} | {res.achieved_pairs_s:.0f} | "
                f"{_ms(res.percentile_ms(50))} | {_ms(res.percentile_ms(99))} | "
                f"{_ms(res.percentile_ms(99, True))} | {100 * res.failure_rate:.1f}% | "
                f"{_pct(res.server_cpu_pct)} | {_pct(res.generator_cpu_pct)} |"
            )
    settings_text = ", ".join(f"`{k}={v}`" for k, v in sorted(settings.items())) or "defaults"
    return "\n".join(
        [
            "# Service benchmark",
            "",
            (
                f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on `{platform.node()}` "
                f"({cpu_description()}), bundle {bundle_desc}, {services} services per request, "
                f"{arrivals} arrivals (open loop: latency from the scheduled send time)."
            ),
            "",
            "```bash",
            command,
            "```",
            "",
            f"Service settings: {settings_text}.",
            "",
            *[f"- {line}" for line in summary_lines(raw, service, naive, target_ms)],
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


def cpu_description() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs{', ' + model if model else ''}"
