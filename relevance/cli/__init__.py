"""``relevance``: one command line for training, export, evaluation and serving (the top layer).

Every command's options are generated from its config dataclass (:mod:`relevance.cli.options`),
so a setting has one name, default and help text across the commands that share it. Each command
is a thin shell over a library function; torch and transformers load inside the command, so
``relevance serve`` and ``--help`` stay fast and torch-free.

Stages register where they are installed: the serving image ships ``relevance`` and ``service``
only, and there ``train``, ``export``, ``teacher`` and the other offline commands are absent.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from relevance.cli import bundle


def release_process_group(*_result, **_params) -> None:
    """After a command that succeeded, destroy the process group its ranks shared under `accelerate launch`.

    Left to interpreter exit, gloo's worker threads can outlive the interpreter and a rank aborts
    (``terminate called without an active exception``), failing the launch after the work is done. The
    check reads ``sys.modules`` so that commands which never loaded torch stay torch-free. Not run when a
    command failed: destroying the group while other ranks may still be in a collective can hang."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


app = typer.Typer(
    help="Reasoning-distilled BERT relevance: train a student, export it as an ONNX bundle, evaluate, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    result_callback=release_process_group,
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


# (stage package, CLI module, its register function), in --help order. A stage that is not installed
# (the serving image has relevance/ and service/ only) leaves its commands out; any other import
# error inside a stage is raised.
STAGES = (
    ("training", "relevance.cli.student", "register"),
    ("export", "relevance.cli.bundle", "register_export"),
    ("recipes", "relevance.cli.recipes", "register"),
    ("teacher", "relevance.cli.teacher", "register"),
    ("lab", "relevance.cli.lab", "register"),
    ("loadtest", "relevance.cli.loadtest", "register"),
)


def _stage_missing(exc: ModuleNotFoundError, stage: str) -> bool:
    """True when ``exc`` says the optional stage package itself is not installed (not a broken import in it)."""
    return exc.name is not None and exc.name.split(".")[0] == stage


def register_stages(app: typer.Typer) -> None:
    for stage, module, function in STAGES:
        try:
            getattr(importlib.import_module(module), function)(app)
        except ModuleNotFoundError as exc:
            if not _stage_missing(exc, stage):
                raise


bundle.register(app)
register_stages(app)
