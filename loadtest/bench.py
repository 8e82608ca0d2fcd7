"""Benchmark the service against raw ORT compute and a naive per-request server, open loop.

    relevance loadtest bench --bundle models/default --data ../shared/data/homedepot

In one run: (1) the raw ONNX Runtime rate of the bundle on padded batches of one request's
services; (2) the service (``relevance serve``, started here on a free loopback port) under an
open-loop load at increasing offered rates, to find the highest throughput whose p99 (refusals
counted as infinitely slow) stays within the target; (3) the same sweep against the naive
baseline (``loadtest.naive_server``). Prints the ratios and writes a markdown table with this
command line. Run it on a quiet machine: the server and this generator share its cores (the
generator's own CPU is measured and reported).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loadtest.config import BenchConfig
from loadtest.engine import RateResult, http_request, run_rate, with_pool
from loadtest.queueing import max_utilisation
from loadtest.raw import RawResult, raw_compute_rate
from loadtest.report import (
    INFINITY_EMB_PAIRS_S,
    bench_markdown,
    rate_line,
    raw_line,
    summary_lines,
)
from loadtest.search import Sweep, sweep
from loadtest.servers import (
    max_run_pairs,
    naive_command,
    service_command,
    settings_env,
    started_server,
)
from loadtest.traffic import DataMissing, build_bodies, load_test_split, pairs_of


def service_settings(cfg: BenchConfig) -> dict[str, str]:
    settings = {
        "cache_enabled": "true" if cfg.cache else "false",
        "log_level": "warning",
        "intra_op_threads": str(cfg.intra_op_threads),
    }
    if cfg.precision:
        settings["precision"] = cfg.precision
    return {**settings, **cfg.settings}


def offered_rates(cfg: BenchConfig, raw: RawResult | None) -> list[float]:
    if cfg.rates:
        return list(cfg.rates)
    assert raw is not None
    return [round(f * raw.pairs_per_s) for f in cfg.fractions]


def ratios(raw: RawResult | None, service: Sweep, naive: Sweep | None, target_ms: float) -> dict[str, float]:
    """The benchmark's comparisons: the best rates within the target against each other, raw compute and
    its queueing ceiling."""
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


def measure_server(
    name: str,
    command: Callable[[int], list[str]],
    env: dict[str, str],
    cfg: BenchConfig,
    bodies: list[bytes],
    rates: list[float],
    log_dir: Path,
) -> Sweep:
    headers = {"X-Deadline-Ms": f"{cfg.deadline_ms:g}"} if cfg.deadline_ms > 0 else None
    with started_server(command, env, log_dir / f"{name}.log") as target:
        requests = [http_request(target.host, target.port, "/relevance", b, headers) for b in bodies]

        def measure(pairs_s: float) -> RateResult:
            res = with_pool(
                target.host,
                target.port,
                lambda pool: run_rate(
                    pool,
                    requests,
                    pairs_s / cfg.services,
                    cfg.duration,
                    cfg.max_requests,
                    cfg.services,
                    cfg.arrivals,
                    cfg.warmup,
                    cfg.timeout,
                    cfg.seed,
                    target.server_cpu,
                ),
            )
            time.sleep(cfg.pause)
            return res

        def show(res: RateResult) -> None:
            print(rate_line(name, res, cfg.p99_target_ms), flush=True)

        return sweep(name, measure, rates, cfg.p99_target_ms, cfg.refine, show)


def run(cfg: BenchConfig, command: str) -> int:
    """The benchmark of ``cfg``; ``command`` is the command line recorded in the table (the one that
    reproduces it). Returns the exit status."""
    bundle = Path(cfg.bundle)
    if not (bundle / "bundle.json").is_file():
        print(
            f"no bundle at {bundle} (expected {bundle / 'bundle.json'}); pass --bundle",
            file=sys.stderr,
        )
        return 2
    try:
        by_query = load_test_split(Path(cfg.data))
    except DataMissing as err:
        print(err, file=sys.stderr)
        return 2
    bodies = build_bodies(by_query, cfg.services, cfg.bodies, cfg.seed)
    print(
        f"{len(by_query)} test queries -> {len(bodies)} request bodies of {cfg.services} services",
        flush=True,
    )
    settings = service_settings(cfg)

    raw = None
    if not cfg.skip_raw:
        raw = raw_compute_rate(
            bundle,
            [pairs_of(b) for b in bodies[:64]],
            cfg.precision or None,
            cfg.intra_op_threads,
            cfg.raw_seconds,
            run_pairs=(max_run_pairs(settings),),
        )
        print(raw_line(raw), flush=True)
    rates = offered_rates(cfg, raw)

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        logs = Path(tmp)
        service = measure_server(
            "service",
            lambda port: service_command(bundle, port),
            settings_env(settings),
            cfg,
            bodies,
            rates,
            logs,
        )
        naive = None
        if not cfg.skip_naive:
            naive = measure_server(
                "naive",
                lambda port: naive_command(bundle, port, cfg.intra_op_threads),
                {},
                cfg,
                bodies,
                rates,
                logs,
            )

    summary = summary_lines(
        raw, ratios(raw, service, naive, cfg.p99_target_ms), naive is not None, cfg.p99_target_ms
    )
    print("\n".join(summary))
    if cfg.out:
        from relevance.bundle import load_bundle

        m = load_bundle(bundle, verify=False).manifest
        desc = f"`{m.name}` {m.version} ({cfg.precision or m.default_precision})"
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        sweeps = [service, *([naive] if naive else [])]
        out.write_text(bench_markdown(command, settings, desc, summary, sweeps, cfg.services, cfg.arrivals))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":  # python -m loadtest.bench: the same as relevance loadtest bench
    from loadtest import run_as_relevance_command

    run_as_relevance_command("bench")
