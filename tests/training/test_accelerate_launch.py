"""The training loop runs unchanged under ``accelerate launch`` with two processes (CPU, gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_two_process_training_writes_one_checkpoint(tiny_init, catalog_jsonl, tmp_path):
    out = tmp_path / "ddp"
    accelerate = Path(sys.executable).with_name("accelerate")
    # accelerate 1.15 starts a single process for "--cpu --num_processes 2"; this form starts two (gloo).
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "relevance.cli", "train",
           "--data", str(catalog_jsonl), "--out", str(out), "--init", str(tiny_init), "--train-split", "train",
           "--dev-split", "dev", "--test-split", "", "--epochs", "1", "--batch-size", "16", "--max-length", "32",
           "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    # two processes share the epoch: each takes half of the batches
    assert report["history"][-1]["step"] == -(-len([1 for line in open(catalog_jsonl) if '"train"' in line]) // 32)
    assert (out / "best" / "model.safetensors").is_file()
