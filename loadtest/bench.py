"""Benchmark the service against raw ORT compute and a naive per-request server, open loop.

    python -m loadtest.bench --bundle models/default --data ../shared/data/homedepot

In one run: (1) the raw ONNX Runtime rate of the bundle on padded batches of one request's
services; (2) the service (``relevance serve``, started here on a free loopback port) under an
open-loop load at increasing offered rates, to find the highest throughput whose p99 (refusals
counted as infinitely slow) stays within the target; (3) the same sweep against the naive
baseline (``loadtest.naive_server``). Prints the ratios and writes a markdown table with this
command line. Run it on a quiet machine: the server and this generator share its cores (the
generator's own CPU is measured and reported).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loadtest.engine import RateResult, http_request, run_rate, with_pool
from loadtest.queueing import max_utilisation
from loadtest.raw import RawResult, raw_compute_rate
from loadtest.report import (
    INFINITY_EMB_PAIRS_S,
    bench_markdown,
    command_line,
    rate_line,
    raw_line,
    summary_lines,
)
from loadtest.search import Sweep, sweep
from loadtest.servers import (
    add_set_option,
    max_run_pairs,
    naive_command,
    parse_settings,
    service_command,
    settings_env,
    started_server,
)
from loadtest.traffic import DataMissing, add_data_option, build_bodies, load_test_split, pairs_of

DEFAULT_FRACTIONS = "0.25,0.5,0.7,0.85,1.0,1.15,1.3,1.5,1.75"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--bundle", type=Path, default=Path("models/default"), help="bundle to serve and measure")
    add_data_option(p, "Home Depot folder (pairs.csv + splits.csv); the test split's queries are used")
    p.add_argument("--services", type=int, default=32, help="services per request")
    p.add_argument(
        "--rates",
        default="",
        help="offered rates in pairs/s, comma-separated; empty: fractions "
        "of the raw compute rate, see --fractions",
    )
    p.add_argument("--fractions", default=DEFAULT_FRACTIONS, help="offered rates as fractions of raw compute")
    p.add_argument(
        "--refine",
        type=int,
        default=2,
        help="bisection steps between the best passing and the first failing rate",
    )
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per offered rate")
    p.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds at each rate before measuring"
    )
    p.add_argument("--max-requests", type=int, default=3000, help="measured requests per rate at most")
    p.add_argument(
        "--arrivals",
        choices=["poisson", "uniform"],
        default="poisson",
        help="inter-arrival times: exponential (realistic) or evenly spaced",
    )
    p.add_argument("--p99-target-ms", type=float, default=100.0, help="latency target for 'best throughput'")
    p.add_argument(
        "--deadline-ms",
        type=float,
        default=0.0,
        help="X-Deadline-Ms sent with each request (0: none, the service's default applies)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, seconds")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between rates, for queues to drain")
    p.add_argument("--raw-seconds", type=float, default=10.0, help="how long to run raw ORT compute")
    p.add_argument("--precision", default="", help="graph to run (empty: the bundle's default)")
    p.add_argument("--intra-op-threads", type=int, default=0, help="ORT threads for all three (0: all cores)")
    add_set_option(p, "service setting, e.g. --set max_batch_pairs=32 (sent as RELEVANCE_NAME)")
    p.add_argument(
        "--cache",
        action="store_true",
        help="leave the result cache on (off by default: it would measure repeats, not the model)",
    )
    p.add_argument("--skip-raw", action="store_true", help="do not measure raw ORT compute")
    p.add_argument("--skip-naive", action="store_true", help="do not measure the naive baseline")
    p.add_argument("--bodies", type=int, default=2000, help="distinct request bodies to cycle through")
    p.add_argument("--out", default="docs/benchmarks-service.md", help="markdown output ('' to skip)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.rates and args.skip_raw:
        p.error("--skip-raw needs --rates (the default rates are fractions of the raw compute rate)")
    return args


def service_settings(args: argparse.Namespace) -> dict[str, str]:
    settings = {
        "cache_enabled": "true" if args.cache else "false",
        "log_level": "warning",
        "intra_op_threads": str(args.intra_op_threads),
    }
    if args.precision:
        settings["precision"] = args.precision
    return {**settings, **parse_settings(args.settings)}


def offered_rates(args: argparse.Namespace, raw: RawResult | None) -> list[float]:
    if args.rates:
        return [float(r) for r in args.rates.split(",") if r.strip()]
    assert raw is not None
    return [round(float(f) * raw.pairs_per_s) for f in args.fractions.split(",") if f.strip()]


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
    args: argparse.Namespace,
    bodies: list[bytes],
    rates: list[float],
    log_dir: Path,
) -> Sweep:
    headers = {"X-Deadline-Ms": f"{args.deadline_ms:g}"} if args.deadline_ms > 0 else None
    with started_server(command, env, log_dir / f"{name}.log") as target:
        requests = [http_request(target.host, target.port, "/relevance", b, headers) for b in bodies]

        def measure(pairs_s: float) -> RateResult:
            res = with_pool(
                target.host,
                target.port,
                lambda pool: run_rate(
                    pool,
                    requests,
                    pairs_s / args.services,
                    args.duration,
                    args.max_requests,
                    args.services,
                    args.arrivals,
                    args.warmup,
                    args.timeout,
                    args.seed,
                    target.server_cpu,
                ),
            )
            time.sleep(args.pause)
            return res

        def show(res: RateResult) -> None:
            print(rate_line(name, res, args.p99_target_ms), flush=True)

        return sweep(name, measure, rates, args.p99_target_ms, args.refine, show)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line("loadtest.bench", argv)
    if not (args.bundle / "bundle.json").is_file():
        print(
            f"no bundle at {args.bundle} (expected {args.bundle / 'bundle.json'}); pass --bundle",
            file=sys.stderr,
        )
        return 2
    try:
        by_query = load_test_split(args.data)
    except DataMissing as err:
        print(err, file=sys.stderr)
        return 2
    bodies = build_bodies(by_query, args.services, args.bodies, args.seed)
    print(
        f"{len(by_query)} test queries -> {len(bodies)} request bodies of {args.services} services",
        flush=True,
    )
    settings = service_settings(args)

    raw = None
    if not args.skip_raw:
        raw = raw_compute_rate(
            args.bundle,
            [pairs_of(b) for b in bodies[:64]],
            args.precision or None,
            args.intra_op_threads,
            args.raw_seconds,
            run_pairs=(max_run_pairs(settings),),
        )
        print(raw_line(raw), flush=True)
    rates = offered_rates(args, raw)

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        logs = Path(tmp)
        service = measure_server(
            "service",
            lambda port: service_command(args.bundle, port),
            settings_env(settings),
            args,
            bodies,
            rates,
            logs,
        )
        naive = None
        if not args.skip_naive:
            naive = measure_server(
                "naive",
                lambda port: naive_command(args.bundle, port, args.intra_op_threads),
                {},
                args,
                bodies,
                rates,
                logs,
            )

    summary = summary_lines(
        raw, ratios(raw, service, naive, args.p99_target_ms), naive is not None, args.p99_target_ms
    )
    print("\n".join(summary))
    if args.out:
        from relevance.bundle import load_bundle

        m = load_bundle(args.bundle, verify=False).manifest
        desc = f"`{m.name}` {m.version} ({args.precision or m.default_precision})"
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        sweeps = [service, *([naive] if naive else [])]
        out.write_text(bench_markdown(command, settings, desc, summary, sweeps, args.services, args.arrivals))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
