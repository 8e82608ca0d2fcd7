"""Benchmarks and load tests of the service: front ends (bench, raw, queueing, run, overload, the Locust file)
over one engine (:mod:`loadtest.engine`), the servers under test (:mod:`loadtest.servers`) and one report
writer (:mod:`loadtest.report`). Their settings are :mod:`loadtest.config`'s dataclasses; the commands are
``relevance loadtest bench | raw | queueing | run | overload``.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def run_as_relevance_command(tool: str) -> NoReturn:
    """``python -m loadtest.TOOL ARGS`` is ``relevance loadtest TOOL ARGS``, so recorded commands still rerun.

    The command line is the layer above the load tests, which do not import it: this process becomes
    the command (as :func:`loadtest.servers.service_command` runs ``relevance serve``)."""
    os.execv(sys.executable, [sys.executable, "-m", "relevance.cli", "loadtest", tool, *sys.argv[1:]])
