"""``relevance export | optimize | eval``: make a bundle, rewrite one, measure one.

``eval`` needs only the core (it runs on the serving image); ``export`` and ``optimize`` are
registered where the ``export`` stage is installed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from relevance.cli.options import Extra, config_command
from relevance.config import EvalConfig


def print_manifest_summary(path: Path) -> None:
    from relevance.bundle import load_bundle

    m = load_bundle(path).manifest
    typer.echo(f"bundle {m.name} {m.version} at {path} (default {m.default_precision})")
    typer.echo("parity: " + json.dumps(m.parity))
    if m.quantization:
        typer.echo("int8: " + json.dumps({k: v for k, v in m.quantization.items() if k != "tried"}))
    if m.training:
        typer.echo("trained: " + m.training.get("method", "?"))
    for split, metrics in m.evaluation.items():
        typer.echo(f"{split}: macro-F1 {metrics['macro_f1']:.4f}  accuracy {metrics['accuracy']:.4f}  "
                   f"NDCG@10 {metrics['ndcg@10']:.4f}  RMSE {metrics.get('rmse', float('nan')):.4f}")


def _eval(given: dict, extras: dict) -> None:
    """Evaluate a bundle through the service's ONNX Runtime code path (same encoder, same backend)."""
    from rich.progress import Progress

    from relevance.bundle import load_bundle
    from relevance.data import load_pairs
    from relevance.evaluate import evaluate_bundle_model
    from relevance.metrics import format_report
    from relevance.model import BundleModel

    cfg = EvalConfig(**given, bundle=str(extras["bundle"]))
    loaded = load_bundle(cfg.bundle)
    pairs = load_pairs(cfg.data, cfg.split or None)
    model = BundleModel.load(loaded, cfg.precision or None)
    with Progress() as progress:
        task = progress.add_task(f"scoring {len(pairs)} pairs", total=len(pairs))
        metrics = evaluate_bundle_model(model, pairs, progress=lambda n: progress.advance(task, n))
    m = loaded.manifest
    typer.echo(format_report(metrics, f"{m.name} {m.version} ({model.precision}) on {cfg.split or 'all pairs'}"))
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(metrics, indent=2))


def _gated(write) -> Path:
    from export.parity import ParityError

    try:
        return write()
    except ParityError as err:
        typer.secho(str(err), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def _export(given: dict, extras: dict) -> None:
    """Export a checkpoint as a bundle: fused fp32 + INT8 (+ FP16) ONNX, tokenizer, bundle.json; fails on parity."""
    from export.config import ExportConfig
    from export.pipeline import export_bundle

    if extras["fp16"] and "precisions" not in given:
        given["precisions"] = ("fp32", "int8", "fp16")
    cfg = ExportConfig(**given, checkpoint=str(extras["checkpoint"]), out=str(extras["out"]))
    print_manifest_summary(_gated(lambda: export_bundle(cfg)))


def _optimize(given: dict, extras: dict) -> None:
    """Rewrite a bundle's graphs for faster CPU kernels (no checkpoint needed); fails if they score differently.

    Undoes ONNX Runtime fusions whose CPU kernels are slower than the ops they replace
    (SkipLayerNormalization, BiasGelu) and records the optimizers the service must disable.
    `relevance lab profile OLD NEW` shows where the time went before and after."""
    from export.config import OptimizeConfig
    from export.optimize import optimize_bundle

    cfg = OptimizeConfig(**given, bundle=str(extras["bundle"]), out=str(extras["out"]))
    print_manifest_summary(_gated(lambda: optimize_bundle(cfg)))


def register(app: typer.Typer) -> None:
    app.command("eval")(config_command(EvalConfig, _eval, exclude=("bundle",), extras=(
        Extra("bundle", Path, dataclasses.MISSING, "bundle folder (e.g. models/default)", argument=True),)))


def register_export(app: typer.Typer) -> None:
    from export.config import ExportConfig, OptimizeConfig

    app.command("export")(config_command(ExportConfig, _export, exclude=("checkpoint", "out"), extras=(
        Extra("checkpoint", Path, dataclasses.MISSING, "student checkpoint folder (e.g. runs/student/best)", argument=True),
        Extra("out", Path, dataclasses.MISSING, "bundle folder to write (replaced only if the parity gate passes)",
              argument=True),
        Extra("fp16", bool, False, "also write an FP16 graph for GPUs (same as --precisions fp32,int8,fp16)"))))
    app.command("optimize")(config_command(OptimizeConfig, _optimize, exclude=("bundle", "out"), extras=(
        Extra("bundle", Path, dataclasses.MISSING, "existing bundle folder (e.g. models/default)", argument=True),
        Extra("out", Path, dataclasses.MISSING, "new bundle folder (written only if the rewritten graphs pass the gate)",
              argument=True))))
