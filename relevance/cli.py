"""``relevance``: one command line for training, export, evaluation and serving.

Each subcommand is a thin shell over a library function; heavy imports (torch, transformers)
happen inside the subcommand so ``relevance serve`` and ``--help`` stay fast and torch-free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="Reasoning-distilled BERT relevance: train a student, export it as an ONNX bundle, evaluate, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

DataOpt = Annotated[
    Path,
    typer.Option("--data", help="Home Depot folder (pairs.csv + splits.csv), a generic .jsonl or the ESCI .csv"),
]
DEFAULT_DATA = Path("../shared/data/homedepot")


@app.callback()
def main() -> None:
    """Reasoning-distilled BERT relevance: train a student, export it as an ONNX bundle, evaluate, serve."""


@app.command()
def train(
    data: DataOpt = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="output folder; the dev-best checkpoint goes to OUT/best")] = Path(
        "runs/student"
    ),
    init: Annotated[str, typer.Option(help="HF model folder to start from (default: all-MiniLM-L6-v2)")] = "",
    train_split: Annotated[str, typer.Option(help="split to train on")] = "teacher_train",
    dev_split: Annotated[str, typer.Option(help="split used to pick the best checkpoint")] = "dev",
    test_split: Annotated[str, typer.Option(help="split reported at the end ('' skips it)")] = "test",
    text_fields: Annotated[str, typer.Option(help="comma-separated service fields, in order")] = "title",
    epochs: Annotated[float, typer.Option(help="passes over the training split")] = 3.0,
    batch_size: Annotated[int, typer.Option(help="pairs per step and device")] = 32,
    lr: Annotated[float, typer.Option(help="encoder learning rate")] = 5e-5,
    max_length: Annotated[int, typer.Option(help="tokens per pair")] = 64,
    rating_loss_weight: Annotated[float, typer.Option(help="weight of the mean-rating MSE term")] = 0.5,
    class_weighting: Annotated[str, typer.Option(help="none | sqrt_inverse | inverse")] = "sqrt_inverse",
    limit_train: Annotated[int, typer.Option(help="train on the first N pairs only (0 = all)")] = 0,
    seed: Annotated[int, typer.Option(help="random seed (runs are deterministic per seed)")] = 13,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0 = default)")] = 0,
) -> None:
    """Fine-tune the 6-layer BERT student on human labels; keep the dev-best checkpoint; report test."""
    from training.config import StudentTrainConfig
    from training.student import train_student

    cfg = StudentTrainConfig(
        data=str(data), out=str(out), init=init, train_split=train_split, dev_split=dev_split,
        test_split=test_split, text_fields=tuple(f.strip() for f in text_fields.split(",") if f.strip()),
        epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length,
        rating_loss_weight=rating_loss_weight, class_weighting=class_weighting, limit_train=limit_train,
        seed=seed, threads=threads,
    )
    train_student(cfg)


@app.command("quant-aware")
def quant_aware(
    checkpoint: Annotated[Path, typer.Argument(help="trained student checkpoint (e.g. runs/student/best)")],
    data: DataOpt = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="output folder; the dev-best checkpoint goes to OUT/best")] = Path(
        "runs/student-qat"
    ),
    train_split: Annotated[str, typer.Option(help="split to fine-tune on (the checkpoint's own training split)")] = "teacher_train",
    pairs: Annotated[int, typer.Option(help="seeded training pairs (0 = the whole split)")] = 12800,
    epochs: Annotated[float, typer.Option(help="passes over those pairs")] = 1.0,
    lr: Annotated[float, typer.Option(help="encoder learning rate (small: the model is already trained)")] = 1e-5,
    label_weight: Annotated[float, typer.Option(help="weight of the label loss next to the two KL anchors")] = 0.5,
    calibration_pairs: Annotated[int, typer.Option(help="seeded pairs that fix the activation ranges")] = 512,
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0 = default)")] = 0,
) -> None:
    """Quantisation-aware fine-tuning for `relevance export --int8-scheme static` (the fast batch-invariant INT8 graph)."""
    from training.config import StudentTrainConfig
    from training.quantization_aware import train_quant_aware
    from training.student import read_student_meta

    meta = read_student_meta(checkpoint)
    cfg = StudentTrainConfig(
        data=str(data), out=str(out), init=str(checkpoint), train_split=train_split, epochs=epochs, lr=lr,
        head_lr=lr, max_length=int(meta.get("max_length", 64)),
        text_fields=tuple(meta.get("text", {}).get("fields", ("title",))), limit_train=pairs, seed=seed,
        threads=threads, evals_per_epoch=4,
    )
    train_quant_aware(cfg, calibration_pairs=calibration_pairs, label_weight=label_weight)


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="student checkpoint folder (e.g. runs/student/best)")],
    out: Annotated[Path, typer.Argument(help="bundle folder to write (replaced only if the parity gate passes)")],
    data: DataOpt = DEFAULT_DATA,
    name: Annotated[str, typer.Option(help="bundle name reported by the service")] = "relevance-student",
    version: Annotated[Optional[str], typer.Option(help="bundle version (default: UTC timestamp)")] = None,
    fp16: Annotated[bool, typer.Option("--fp16/--no-fp16", help="also write an FP16 graph for GPUs")] = False,
    default_precision: Annotated[str, typer.Option(help="graph the service runs by default: int8 | fp32 | fp16")] = "int8",
    dev_split: Annotated[str, typer.Option(help="split of the INT8 gate")] = "dev",
    test_split: Annotated[str, typer.Option(help="split evaluated into bundle.json ('' skips it)")] = "test",
    max_abs_diff: Annotated[float, typer.Option(help="gate: max |fp32 ONNX - PyTorch| logit difference")] = 1e-4,
    min_int8_agreement: Annotated[float, typer.Option(help="gate: min INT8 vs fp32 label agreement on dev")] = 0.99,
    max_int8_f1_drop: Annotated[float, typer.Option(help="gate: max INT8 dev macro-F1 loss (0.003 = 0.3 pt)")] = 0.003,
    ship: Annotated[Optional[str], typer.Option(
        help="comma-separated precisions kept in the bundle (default: all exported; 'int8' for a small CPU bundle)"
    )] = None,
    int8_scheme: Annotated[str, typer.Option(
        help="blockwise: every MatMul block-wise 8-bit (most accurate, slow kernel) | static: every MatMul takes the "
             "~2x faster per-tensor kernel with calibrated activation scales (for checkpoints from `relevance "
             "quant-aware`) | mixed: only MatMuls that tolerate it go per-tensor, chosen by measured sensitivity"
    )] = "blockwise",
    calibration_split: Annotated[str, typer.Option(
        help="split the static and mixed schemes calibrate on (never the gate's)")] = "teacher_train",
    calibration_pairs: Annotated[int, typer.Option(help="seeded calibration pairs (static and mixed schemes)")] = 1024,
    calibration_max_loss: Annotated[float, typer.Option(
        help="mixed: most calibration label agreement (vs fp32) the plan may give up against all-block-wise"
    )] = 0.002,
) -> None:
    """Export a checkpoint as a bundle: fused fp32 + INT8 (+ FP16) ONNX, tokenizer, bundle.json; fails on parity."""
    from export.parity import ParityError, ParityLimits
    from export.pipeline import export_bundle

    precisions = ("fp32", "int8", "fp16") if fp16 else ("fp32", "int8")
    limits = ParityLimits(max_abs_diff, min_int8_agreement, max_int8_f1_drop)
    try:
        path = export_bundle(checkpoint, out, data, name=name, version=version, precisions=precisions,
                             default_precision=default_precision, dev_split=dev_split,
                             test_split=test_split or None, limits=limits,
                             ship=tuple(ship.split(",")) if ship else None, int8_scheme=int8_scheme,
                             calibration_split=calibration_split, calibration_pairs=calibration_pairs,
                             calibration_max_loss=calibration_max_loss)
    except ParityError as err:
        typer.secho(str(err), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    _print_manifest_summary(path)


@app.command()
def optimize(
    bundle: Annotated[Path, typer.Argument(help="existing bundle folder (e.g. models/default)")],
    out: Annotated[Path, typer.Argument(help="new bundle folder (written only if the rewritten graphs pass the gate)")],
    version: Annotated[str, typer.Option(help="version of the new bundle (same weights, new graphs)")],
    data: DataOpt = DEFAULT_DATA,
    dev_split: Annotated[str, typer.Option(help="split of the gate")] = "dev",
    test_split: Annotated[str, typer.Option(help="split evaluated into bundle.json ('' skips it)")] = "test",
    min_agreement: Annotated[float, typer.Option(help="gate: min INT8 label agreement with the source graph on dev")] = 0.99,
    max_f1_drop: Annotated[float, typer.Option(help="gate: max dev macro-F1 loss vs the source graph")] = 0.003,
) -> None:
    """Rewrite a bundle's graphs for faster CPU kernels (no checkpoint needed); fails if they score differently.

    Undoes ONNX Runtime fusions whose CPU kernels are slower than the ops they replace
    (SkipLayerNormalization, BiasGelu) and records the optimizers the service must disable.
    `python -m export.profile OLD NEW` shows where the time went before and after."""
    from export.parity import ParityError, ParityLimits
    from export.rewrite import optimize_bundle

    try:
        path = optimize_bundle(bundle, out, data, version, dev_split=dev_split, test_split=test_split or None,
                               limits=ParityLimits(min_int8_agreement=min_agreement, max_int8_f1_drop=max_f1_drop))
    except ParityError as err:
        typer.secho(str(err), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    _print_manifest_summary(path)


def _print_manifest_summary(path: Path) -> None:
    from relevance.bundle import load_bundle

    m = load_bundle(path).manifest
    typer.echo(f"bundle {m.name} {m.version} at {path} (default {m.default_precision})")
    typer.echo("parity: " + json.dumps(m.parity))
    if m.quantization:
        typer.echo("int8: " + json.dumps({k: v for k, v in m.quantization.items() if k != "tried"}))
    for split, metrics in m.evaluation.items():
        typer.echo(f"{split}: macro-F1 {metrics['macro_f1']:.4f}  accuracy {metrics['accuracy']:.4f}  "
                   f"NDCG@10 {metrics['ndcg@10']:.4f}  RMSE {metrics.get('rmse', float('nan')):.4f}")


@app.command("eval")
def eval_bundle(
    bundle: Annotated[Path, typer.Argument(help="bundle folder (e.g. models/default)")],
    data: DataOpt = DEFAULT_DATA,
    split: Annotated[str, typer.Option(help="split to evaluate ('' = every pair, e.g. a file without splits)")] = "test",
    precision: Annotated[Optional[str], typer.Option(help="graph to run (default: the bundle's default)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write the metrics as JSON here")] = None,
) -> None:
    """Evaluate a bundle through the service's ONNX Runtime code path (same encoder, same backend)."""
    from rich.progress import Progress

    from relevance.bundle import load_bundle
    from relevance.data import load_pairs
    from relevance.evaluate import evaluate_bundle_model
    from relevance.metrics import format_report
    from relevance.model import BundleModel

    loaded = load_bundle(bundle)
    pairs = load_pairs(data, split or None)
    model = BundleModel.load(loaded, precision)
    with Progress() as progress:
        task = progress.add_task(f"scoring {len(pairs)} pairs", total=len(pairs))
        metrics = evaluate_bundle_model(model, pairs, progress=lambda n: progress.advance(task, n))
    typer.echo(format_report(metrics, f"{loaded.manifest.name} {loaded.manifest.version} ({model.precision}) on {split or 'all pairs'}"))
    if out:
        out.write_text(json.dumps(metrics, indent=2))


@app.command()
def serve(
    bundle: Annotated[Optional[Path], typer.Option(help="bundle folder of the default variant (default: models/default)")] = None,
    host: Annotated[Optional[str], typer.Option(help="interface to bind (default from settings: 0.0.0.0)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default from settings: 8000)")] = None,
) -> None:
    """Serve POST /relevance (uvicorn). Other variants, A/B buckets and the shadow come from RELEVANCE_* settings."""
    from service.server import serve as run_server

    run_server(bundle=bundle, host=host, port=port)


# Commands of the later stages live beside their code; importing them does not import torch.
# The serving image ships relevance/ and service/ only: there these commands are simply absent.
try:
    from training.crsd_cli import compare as crsd_compare
    from training.crsd_cli import distill as crsd_distill
    from training.teacher.cli import annotate as teacher_annotate
    from training.teacher.cli import teacher_app
except ModuleNotFoundError as exc:
    if exc.name is None or exc.name.split(".")[0] != "training":
        raise
else:
    app.add_typer(teacher_app, name="teacher")
    app.command("annotate")(teacher_annotate)
    app.command("distill")(crsd_distill)
    app.command("compare")(crsd_compare)


if __name__ == "__main__":
    app()
