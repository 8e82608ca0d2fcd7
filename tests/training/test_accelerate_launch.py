"""The training loop runs unchanged under ``accelerate launch`` with two processes (CPU, gloo)."""

from __future__ import annotations

import json

from tests.launch import accelerate_cli


def test_two_process_training_writes_one_checkpoint(tiny_init, catalog_jsonl, tmp_path):
    out = tmp_path / "ddp"
    accelerate_cli(["train", "--data", str(catalog_jsonl), "--out", str(out), "--init", str(tiny_init),
                    "--train-split", "train", "--dev-split", "dev", "--test-split", "", "--epochs", "1",
                    "--batch-size", "16", "--max-length", "32", "--threads", "1"], cwd=tmp_path)
    report = json.loads((out / "report.json").read_text())
    # two processes share the epoch: each takes half of the batches
    assert report["history"][-1]["step"] == -(-len([1 for line in open(catalog_jsonl) if '"train"' in line]) // 32)
    assert (out / "best" / "model.safetensors").is_file()
