"""The tools run as the shell runs them: ``relevance loadtest TOOL ARGS`` in this process, its exit status."""

from __future__ import annotations

from collections.abc import Sequence


def relevance_loadtest(tool: str, args: Sequence[str]) -> int:
    """Exit status of ``relevance loadtest TOOL ARGS``; its output goes to this process's stdout, stderr."""
    from relevance.cli import app

    try:
        app(["loadtest", tool, *args], prog_name="relevance")
    except SystemExit as end:
        return 0 if end.code is None else int(end.code)
    return 0
