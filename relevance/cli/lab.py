"""``relevance lab runtimes | profile | quant-sweep | teacher-strength``: the lab's measurements of the product.

Registered where the ``lab`` package is installed (not in the serving image). Importing this module
imports the torch-free configs only; the tools (and torch, for ``runtimes``) load inside the commands.
Each tool records the ``relevance lab ...`` command that reproduces its table.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from lab.config import ProfileConfig, QuantSweepConfig, RuntimesConfig, TeacherStrengthConfig
from relevance.cli.options import Extra, command_line, config_command


def _done(code: int) -> None:
    if code:
        raise typer.Exit(code)


def _runtimes(given: dict, extras: dict) -> None:
    """Throughput of the student under PyTorch eager, ONNX Runtime fp32 and INT8 on the same batches, into --out."""
    from lab.runtimes import run

    _done(run(RuntimesConfig(**given, bundle=str(extras["bundle"])), command_line(extras["ctx"])))


def _profile(given: dict, extras: dict) -> None:
    """Where bundles' inference time goes: ONNX Runtime's per-node profile summed by operator, same batches."""
    from lab.profile import run

    cfg = ProfileConfig(**given, bundles=tuple(str(b) for b in extras["bundles"]))
    _done(run(cfg, command_line(extras["ctx"])))


def _quant_sweep(given: dict, extras: dict) -> None:
    """INT8 schemes for a bundle's fp32 graph: dev label agreement with fp32, size and speed, in one run."""
    from lab.quant_sweep import run

    _done(run(QuantSweepConfig(**given, bundle=str(extras["bundle"])), command_line(extras["ctx"])))


def _teacher_strength(given: dict, extras: dict) -> None:
    """CRSD minus label-only KD (student test macro-F1) against the teacher's macro-F1: table and plot from recorded runs."""
    from lab.teacher_strength import render

    cfg = TeacherStrengthConfig(**given)
    path = render(cfg.spec, cfg.doc, cfg.section, cfg.plot or None)
    typer.echo(f"wrote {path}" + (f" and {cfg.plot}" if cfg.plot else ""))


def register(app: typer.Typer) -> None:
    lab = typer.Typer(help="Benchmarks, profiles and sweeps of the product (they write the tables in docs/).",
                      no_args_is_help=True)
    lab.command("runtimes")(config_command(RuntimesConfig, _runtimes, exclude=("bundle",), context=True, extras=(
        Extra("bundle", Path, dataclasses.MISSING, "bundle folder (e.g. models/default)", argument=True),)))
    lab.command("profile")(config_command(ProfileConfig, _profile, exclude=("bundles",), context=True, extras=(
        Extra("bundles", list[Path], dataclasses.MISSING, "bundle folders, profiled on the same batches",
              argument=True),)))
    lab.command("quant-sweep")(config_command(QuantSweepConfig, _quant_sweep, exclude=("bundle",), context=True, extras=(
        Extra("bundle", Path, dataclasses.MISSING, "a bundle that ships the fp32 graph (relevance export without --ship)",
              argument=True),)))
    lab.command("teacher-strength")(config_command(TeacherStrengthConfig, _teacher_strength))
    app.add_typer(lab, name="lab")
