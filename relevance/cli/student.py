"""``relevance train | quant-aware | distill | compare``: the student's trainers, options from their configs.

Registered only where the ``training`` stage is installed (not in the serving image). Importing
this module imports the torch-free configs only; torch loads inside the commands.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from relevance.cli.options import Extra, command_line, config_command
from training.config import PRESETS, CRSDConfig, QuantAwareConfig, StudentTrainConfig


def _train(given: dict, extras: dict) -> None:
    """Fine-tune the 6-layer BERT student on human labels; keep the dev-best checkpoint; report test."""
    from training.student import train_student

    train_student(StudentTrainConfig(**given), command_line(extras["ctx"]))


def _quant_aware(given: dict, extras: dict) -> None:
    """Quantisation-aware fine-tuning for `relevance export --int8-scheme static` (the fast batch-invariant INT8 graph)."""
    from training.quantization_aware import quant_aware_config, train_quant_aware

    train_quant_aware(quant_aware_config(str(extras["checkpoint"]), given), command_line(extras["ctx"]))


def _distill(given: dict, extras: dict) -> None:
    """Distil the teacher's labels and reasoning into the student (CRSD or a baseline preset)."""
    from training.crsd import train_crsd

    preset = extras["preset"]
    given.setdefault("out", str(Path("runs/crsd") / preset))
    train_crsd(CRSDConfig.from_preset(preset, **given), command_line(extras["ctx"]))


def _compare(given: dict, extras: dict) -> None:
    """Run presets x seeds (resumable), then write the tables into DOC and the plot into PLOT."""
    from lab.compare import render, run_comparison

    presets, record, plot = extras["presets"], extras["record"], extras["plot"]
    names = list(PRESETS) if presets.strip() == "all" else [p.strip() for p in presets.split(",") if p.strip()]
    if not extras["render_only"]:
        run_comparison(names, [int(s) for s in extras["seeds"].split(",") if s.strip()], extras["results"], given,
                       force=extras["force"], command=command_line(extras["ctx"]),
                       latency_pairs=extras["latency_pairs"], record=record)
    path = render(record or extras["results"], extras["doc"], extras["section"], plot, extras["teacher_metrics"],
                  extras["plot_title"])
    typer.echo(f"wrote {path}" + (f" and {plot}" if plot else ""))


PRESET_HELP = " | ".join(PRESETS)
COMPARE_EXTRAS = (
    Extra("presets", str, "all", "comma-separated presets to run ('all' = every preset: " + PRESET_HELP + ")"),
    Extra("seeds", str, "13", "comma-separated seeds (three where time allows)"),
    Extra("results", Path, Path("runs/compare"), "one folder per preset and seed, each with metrics.json"),
    Extra("record", Optional[Path], None, "where each run's metrics.json goes (default: RESULTS); a committed folder "
          "such as artifacts/compare/homedepot keeps the table's inputs after the checkpoints are gone"),
    Extra("teacher_metrics", Optional[Path], None, "JSON with the teacher's test metrics (retention, teacher row)"),
    Extra("doc", Path, Path("docs/results.md"), "markdown file whose results section is (re)written"),
    Extra("section", str, "homedepot", "name of the section markers in DOC"),
    Extra("plot", Optional[Path], Path("docs/results.png"), "PNG of the main comparison"),
    Extra("plot_title", str, "", "title of the plot (default: what it shows)"),
    Extra("force", bool, False, "rerun runs that already have metrics.json"),
    Extra("render_only", bool, False, "only re-render DOC and PLOT from existing runs"),
    Extra("latency_pairs", int, 100, "pairs timed for the student's CPU latency (0 = skip)"),
)


def register(app: typer.Typer) -> None:
    app.command("train")(config_command(StudentTrainConfig, _train, context=True))
    app.command("quant-aware")(config_command(
        QuantAwareConfig, _quant_aware, exclude=("init", *QuantAwareConfig.SHAPE_FIELDS), context=True,
        extras=(Extra("checkpoint", Path, dataclasses.MISSING, "trained student checkpoint (e.g. runs/student/best)",
                      argument=True),)))
    app.command("distill")(config_command(
        CRSDConfig, _distill, exclude=("preset",), context=True, defaults={"out": "runs/crsd/PRESET"},
        extras=(Extra("preset", str, "crsd", PRESET_HELP),)))
    app.command("compare")(config_command(CRSDConfig, _compare, exclude=("out", "seed", "preset"), context=True,
                                          extras=COMPARE_EXTRAS))
