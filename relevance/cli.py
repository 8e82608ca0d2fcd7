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


@app.command()
def serve(
    bundle: Annotated[Optional[Path], typer.Option(help="bundle folder of the default variant (default: models/default)")] = None,
    host: Annotated[Optional[str], typer.Option(help="interface to bind (default from settings: 0.0.0.0)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default from settings: 8000)")] = None,
) -> None:
    """Serve POST /relevance (uvicorn). Other variants, A/B buckets and the shadow come from RELEVANCE_* settings."""
    from service.server import serve as run_server

    run_server(bundle=bundle, host=host, port=port)


if __name__ == "__main__":
    app()
