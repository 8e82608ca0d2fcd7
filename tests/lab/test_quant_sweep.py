"""The INT8 sweep (``relevance lab quant-sweep``) runs end to end on the tiny bundle and prints a row per candidate graph."""

from __future__ import annotations

from typer.testing import CliRunner

from lab.quant_sweep import candidates
from relevance.cli import app


def test_sweep_prints_every_candidate(tiny_bundle, catalog_jsonl):
    result = CliRunner().invoke(app, ["lab", "quant-sweep", str(tiny_bundle), "--data", str(catalog_jsonl), "--threads",
                                      "1", "--batches", "1", "--calibration-split", "train", "--calibration-pairs", "64"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    names = ["fp32 (fused)", *candidates(tiny_bundle / "model.onnx")]
    assert all(f"| {name} |" in out for name in names)
    assert f"`relevance lab quant-sweep {tiny_bundle} --data {catalog_jsonl}" in out
