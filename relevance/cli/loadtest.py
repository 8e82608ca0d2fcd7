"""``relevance loadtest bench | engines | overload | pareto | path | raw | run | queueing``: the service's benchmarks and load tests.

Registered where the ``loadtest`` package is installed (not in the serving image). Importing this
module imports the configs only (:mod:`loadtest.config`); each tool loads inside its command. The
tools that write a report record the ``relevance loadtest ...`` command that reproduces it;
``python -m loadtest.TOOL`` runs the same commands.
"""

from __future__ import annotations

import typer

from loadtest.config import (
    BenchConfig,
    EnginesConfig,
    LoadRunConfig,
    OverloadConfig,
    ParetoConfig,
    PathConfig,
    QueueingConfig,
    RawConfig,
)
from relevance.cli.options import command_line, config_command


def _config(config: type, given: dict, ctx: typer.Context):
    """``config(**given)``; settings it refuses are a usage error (exit status 2), as a bad option is."""
    try:
        return config(**given)
    except ValueError as err:
        raise typer.BadParameter(str(err), ctx) from None


def _done(code: int) -> None:
    if code:
        raise typer.Exit(code)


def _bench(given: dict, extras: dict) -> None:
    """The service against raw ORT compute and a naive per-request server, open loop (a table into --out).

    Raw ONNX Runtime compute of the bundle, then the service (started here on a free loopback port) and
    the naive baseline under open-loop load at rising offered rates: the highest throughput whose p99
    (refusals counted as infinitely slow) stays within the target. Run it on a quiet machine."""
    from loadtest.bench import run

    ctx = extras["ctx"]
    _done(run(_config(BenchConfig, given, ctx), command_line(ctx)))


def _overload(given: dict, extras: dict) -> None:
    """Does the service keep its latency promises under overload? Loads at multiples of raw compute R.

    Lone requests of 1-256 services against the server's estimate, then open-loop traffic at multiples
    of R: goodput, shed and admitted-late rates, refusal and probe p99s, recovery after each load;
    promise checks as PASS/FAIL (exit status 1 when one fails). Writes report.json, report.md and
    overload.png to --out-dir."""
    from loadtest.overload import run

    ctx = extras["ctx"]
    _done(run(_config(OverloadConfig, given, ctx), command_line(ctx)))


def _raw(given: dict, extras: dict) -> None:
    """Raw ONNX Runtime compute of request batches: one padded batch against the batcher's sorted runs.

    The evidence behind the max_run_pairs default (compare run sizes with --run-pairs)."""
    from loadtest.raw import run

    _done(run(_config(RawConfig, given, extras["ctx"])))


def _run(given: dict, extras: dict) -> None:
    """The highest throughput the service sustains under a p99 target, for one scenario (report and plot).

    The scenario file (loadtest/scenarios/) says what traffic to send and how to step the offered rate;
    --print-schema shows its fields. With --bundle the service is started here, with --url a running
    one is loaded (loopback only). docs/operations.md (Load testing) describes the report."""
    from loadtest.run import run

    ctx = extras["ctx"]
    _done(run(_config(LoadRunConfig, given, ctx), command_line(ctx)))


def _engines(given: dict, extras: dict) -> None:
    """ONNX Runtime against OpenVINO on the same student and requests: pairs/s and dev quality per engine.

    The bundle's INT8 graph under ONNX Runtime, its QDQ twin (what `relevance optimize --engine
    openvino` ships) and the dequantised fp32 graph under both engines, and NNCF's own INT8."""
    from loadtest.engines import run

    ctx = extras["ctx"]
    _done(run(_config(EnginesConfig, given, ctx), command_line(ctx)))


def _pareto(given: dict, extras: dict) -> None:
    """Bundles' quality against speed in one run: test macro-F1, RMSE, NDCG@10, raw pairs/s, lone latency.

    Per bundle: its architecture read from the graph, the quality on --split through the serving code
    path, raw ONNX Runtime pairs/s on the same requests (sorted runs as the batcher plans them), and
    lone requests through `relevance serve` (default settings, cache off). Ratios against the first."""
    from loadtest.pareto import run

    ctx = extras["ctx"]
    _done(run(_config(ParetoConfig, given, ctx), command_line(ctx)))


def _path(given: dict, extras: dict) -> None:
    """A lone request's latency through the service against its compute: what HTTP, validation,
    tokenisation and JSON add (1-32 services), and the request's runs split over the cores."""
    from loadtest.path import run

    ctx = extras["ctx"]
    _done(run(_config(PathConfig, given, ctx), command_line(ctx)))


def _queueing(given: dict, extras: dict) -> None:
    """How busy can a server be before its p99 passes a target? The M/D/1 ceiling of a latency SLO."""
    from loadtest.queueing import run

    _done(run(_config(QueueingConfig, given, extras["ctx"])))


def register(app: typer.Typer) -> None:
    loadtest = typer.Typer(help="Benchmarks and load tests of the service (they write the tables in docs/).",
                           no_args_is_help=True)
    for name, config, command in (("bench", BenchConfig, _bench), ("engines", EnginesConfig, _engines),
                                  ("overload", OverloadConfig, _overload),
                                  ("raw", RawConfig, _raw), ("run", LoadRunConfig, _run),
                                  ("pareto", ParetoConfig, _pareto), ("path", PathConfig, _path),
                                  ("queueing", QueueingConfig, _queueing)):
        loadtest.command(name)(config_command(config, command, context=True))
    app.add_typer(loadtest, name="loadtest")
