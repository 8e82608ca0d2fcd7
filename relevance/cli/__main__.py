"""``python -m relevance.cli`` (and ``accelerate launch -m relevance.cli``): the ``relevance`` command."""

from relevance.cli import app

app()
