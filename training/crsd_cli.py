"""Typer commands ``distill`` and ``compare`` (CRSD and its baselines), for ``relevance`` to register.

Importing this module imports neither torch nor transformers: they load inside the commands, so
``relevance --help`` stays fast. Until the commands are registered in ``relevance.cli`` they run as
``python -m training.crsd_cli distill|compare ...`` (also under ``accelerate launch -m``).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

DEFAULT_DATA = Path("../shared/data/homedepot")
DataOpt = Annotated[Path, typer.Option("--data", help="Home Depot folder (pairs.csv + splits.csv) or a generic .jsonl")]
AnnotationsOpt = Annotated[
    Optional[Path], typer.Option(help="teacher annotation JSONL of the pool split (records keyed by pair id)")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="any CRSDConfig field as KEY=VALUE (repeatable), e.g. --set infonce_weight=0.5"),
]
InitOpt = Annotated[str, typer.Option(help="HF model folder to start from (default: all-MiniLM-L6-v2)")]
EpochsOpt = Annotated[Optional[float], typer.Option(help="passes over the training pairs (default: the config's)")]
BatchOpt = Annotated[Optional[int], typer.Option(help="pairs per step and device (default: the config's)")]
LimitOpt = Annotated[Optional[int], typer.Option(help="cap the training pairs (seeded random sample)")]
ThreadsOpt = Annotated[int, typer.Option(help="torch CPU threads (0 = default)")]


def parse_overrides(items: list[str] | None) -> dict:
    """``KEY=VALUE`` strings to typed :class:`~training.crsd.CRSDConfig` fields (unknown keys are errors)."""
    from dataclasses import fields

    from training.crsd import CRSDConfig

    types = {f.name: str(f.type) for f in fields(CRSDConfig)}
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE with KEY one of {', '.join(types)}", param_hint="--set")
        kind = types[key]
        if kind == "bool":
            out[key] = value.strip().lower() in {"1", "true", "yes", "on"}
        elif kind in {"int", "float"}:
            out[key] = (int if kind == "int" else float)(value)
        elif kind.startswith("tuple"):
            out[key] = tuple(v.strip() for v in value.split(",") if v.strip())
        else:
            out[key] = value
    return out


def _common(data: Path, annotations: Optional[Path], init: str, epochs: Optional[float], batch_size: Optional[int],
            limit_train: Optional[int], threads: int, sets: list[str] | None) -> dict:
    given = {"data": str(data), "annotations": str(annotations) if annotations else "", "init": init,
             "epochs": epochs, "batch_size": batch_size, "limit_train": limit_train, "threads": threads}
    return {**{k: v for k, v in given.items() if v is not None}, **parse_overrides(sets)}


def _command_line(ctx: typer.Context) -> str:
    """The command that reproduces this run, rebuilt from the parsed options (not from sys.argv,
    which under a test runner or ``python -m`` names the runner, not this command)."""
    parts = ["relevance", ctx.info_name or "compare"]
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    for name, value in ctx.params.items():
        flag = flags[name]
        if value is None or value is False or value == () or value == "":
            continue
        if value is True:
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                parts += [flag, shlex.quote(str(item))]
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def distill(
    preset: Annotated[str, typer.Option(help="crsd | crsd_no_infonce | crsd_no_aug_ce | crsd_no_kl | teacher_hard | "
                                             "teacher_soft | human_budget | human_full")] = "crsd",
    data: DataOpt = DEFAULT_DATA,
    annotations: AnnotationsOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default runs/crsd/PRESET); best model in OUT/best")] = None,
    init: InitOpt = "",
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    limit_train: LimitOpt = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
    threads: ThreadsOpt = 0,
    set_: SetOpt = None,
) -> None:
    """Distil the teacher's labels and reasoning into the student (CRSD or a baseline preset)."""
    from training.crsd import CRSDConfig, train_crsd

    common = _common(data, annotations, init, epochs, batch_size, limit_train, threads, set_)
    cfg = CRSDConfig.from_preset(preset, **{"out": str(out or Path("runs/crsd") / preset), "seed": seed, **common})
    train_crsd(cfg)


def compare(
    ctx: typer.Context,
    presets: Annotated[str, typer.Option(help="comma-separated presets to run ('all' = every preset)")] = "all",
    seeds: Annotated[str, typer.Option(help="comma-separated seeds (three where time allows)")] = "13",
    data: DataOpt = DEFAULT_DATA,
    annotations: AnnotationsOpt = None,
    results: Annotated[Path, typer.Option(help="one folder per preset and seed, each with metrics.json")] = Path(
        "runs/compare"
    ),
    record: Annotated[
        Optional[Path],
        typer.Option(help="where each run's metrics.json goes (default: RESULTS); a committed folder such as "
                          "artifacts/compare/homedepot keeps the table's inputs after the checkpoints are gone"),
    ] = None,
    teacher_metrics: Annotated[
        Optional[Path], typer.Option(help="JSON with the teacher's test metrics (for retention and the teacher row)")
    ] = None,
    doc: Annotated[Path, typer.Option(help="markdown file whose results section is (re)written")] = Path("docs/results.md"),
    section: Annotated[str, typer.Option(help="name of the section markers in DOC")] = "homedepot",
    plot: Annotated[Optional[Path], typer.Option(help="PNG of the main comparison")] = Path("docs/results.png"),
    plot_title: Annotated[str, typer.Option(help="title of the plot (default: what it shows)")] = "",
    init: InitOpt = "",
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    limit_train: LimitOpt = None,
    threads: ThreadsOpt = 0,
    set_: SetOpt = None,
    force: Annotated[bool, typer.Option(help="rerun runs that already have metrics.json")] = False,
    render_only: Annotated[bool, typer.Option(help="only re-render DOC and PLOT from existing runs")] = False,
    latency_pairs: Annotated[int, typer.Option(help="pairs timed for the student's CPU latency (0 = skip)")] = 100,
) -> None:
    """Run presets x seeds (resumable), then write the tables into DOC and the plot into PLOT."""
    from training.compare import render, run_comparison
    from training.crsd import PRESETS

    names = list(PRESETS) if presets.strip() == "all" else [p.strip() for p in presets.split(",") if p.strip()]
    if not render_only:
        common = _common(data, annotations, init, epochs, batch_size, limit_train, threads, set_)
        run_comparison(names, [int(s) for s in seeds.split(",") if s.strip()], results, common,
                       force=force, command=_command_line(ctx), latency_pairs=latency_pairs, record=record)
    path = render(record or results, doc, section, plot, teacher_metrics, plot_title)
    typer.echo(f"wrote {path}" + (f" and {plot}" if plot else ""))


def app() -> typer.Typer:
    """A stand-alone app with both commands (``python -m training.crsd_cli``)."""
    cli = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)
    cli.command()(distill)
    cli.command()(compare)
    return cli


if __name__ == "__main__":
    app()()
