"""The INT8 sweep runs end to end on the tiny bundle and prints a row per candidate graph."""

from __future__ import annotations

from export.quant_sweep import candidates, main


def test_sweep_prints_every_candidate(tiny_bundle, catalog_jsonl, capsys):
    assert main([str(tiny_bundle), "--data", str(catalog_jsonl), "--threads", "1", "--batches", "1", "--calibration-split", "train",
                 "--calibration-pairs", "64"]) == 0
    out = capsys.readouterr().out
    names = ["fp32 (fused)", *candidates(tiny_bundle / "model.onnx")]
    assert all(f"| {name} |" in out for name in names)
