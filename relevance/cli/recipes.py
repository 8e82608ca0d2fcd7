"""``relevance shrink``: the recipes, stages chained end to end (options from their nested configs).

Registered only where the ``recipes`` package is installed (not in the serving image); torch loads
inside the command.
"""

from __future__ import annotations

import typer

from recipes.config import QAT_FIXED, STUDENT_FIXED, SmallStudentConfig
from relevance.cli.options import command_line, config_command


def _shrink(given: dict, extras: dict) -> None:
    """A smaller, faster student from an accurate bundle, end to end: the bundle's soft labels on pool,
    distillation (student_kd), quantisation-aware fine-tuning, gated export. Finished stages are kept."""
    from recipes.small_student import shrink

    outcome = shrink(SmallStudentConfig(**given), command_line(extras["ctx"]))
    typer.echo(outcome.summary())


def register(app: typer.Typer) -> None:
    hidden = tuple(f"student.{name}" for name in STUDENT_FIXED) + tuple(f"qat.{name}" for name in QAT_FIXED)
    app.command("shrink")(config_command(SmallStudentConfig, _shrink, exclude=hidden, context=True))
