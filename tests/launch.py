"""Run ``relevance ...`` under ``accelerate launch`` with two CPU processes (gloo), as a GPU team would on two GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def accelerate_cli(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """``accelerate launch -m relevance.cli ARGS`` on two processes; asserts it exited 0 (output in the message)."""
    accelerate = Path(sys.executable).with_name("accelerate")
    # accelerate 1.15 starts a single process for "--cpu --num_processes 2"; this form starts two (gloo).
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "relevance.cli", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc
