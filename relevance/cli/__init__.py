"""``relevance``: one command line for training, export, evaluation and serving (the top layer).

Every command's options are generated from its config dataclass (:mod:`relevance.cli.options`),
so a setting has one name, default and help text across the commands that share it. Each command
is a thin shell over a library function; torch and transformers load inside the command, so
``relevance serve`` and ``--help`` stay fast and torch-free.

Stages register where they are installed: the serving image ships ``relevance`` and ``service``
only, and there ``train``, ``export``, ``teacher`` and the other offline commands are absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from relevance.cli import bundle

app = typer.Typer(
    help="Reasoning-distilled BERT relevance: train a student, export it as an ONNX bundle, evaluate, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main() -> None:
    """Reasoning-distilled BERT relevance: train a student, export it as an ONNX bundle, evaluate, serve."""


@app.command()
def serve(
    bundle: Annotated[Optional[Path], typer.Option(help="bundle folder of the default variant (default: models/default)")] = None,
    host: Annotated[Optional[str], typer.Option(help="interface to bind (default from settings: 0.0.0.0)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default from settings: 8000)")] = None,
) -> None:
    """Serve POST /relevance (uvicorn). Other variants, A/B buckets and the shadow come from RELEVANCE_* settings."""
    from service.server import serve as run_server

    run_server(bundle=bundle, host=host, port=port)


def _stage_missing(exc: ModuleNotFoundError, stage: str) -> bool:
    """True when ``exc`` says the optional stage package itself is not installed (not a broken import in it)."""
    return exc.name is not None and exc.name.split(".")[0] == stage


bundle.register(app)
try:
    from relevance.cli import student
except ModuleNotFoundError as exc:
    if not _stage_missing(exc, "training"):
        raise
else:
    student.register(app)
try:
    bundle.register_export(app)
except ModuleNotFoundError as exc:
    if not _stage_missing(exc, "export"):
        raise
try:
    from relevance.cli import teacher
except ModuleNotFoundError as exc:
    if not _stage_missing(exc, "teacher"):
        raise
else:
    teacher.register(app)
try:
    from relevance.cli import lab
except ModuleNotFoundError as exc:
    if not _stage_missing(exc, "lab"):
        raise
else:
    lab.register(app)
try:
    from relevance.cli import loadtest
    loadtest.register(app)
except ModuleNotFoundError as exc:
    if not _stage_missing(exc, "loadtest"):
        raise
