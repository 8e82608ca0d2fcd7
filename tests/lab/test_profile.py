"""The per-operator profile: ORT traces summed by op type, per run; ``relevance lab profile`` writes a comparison table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lab.profile import kernel_times
from relevance.cli import app


def test_kernel_times_sum_node_events_by_op_type_per_run(tmp_path):
    events = [
        {"cat": "Node", "name": "a_kernel_time", "dur": 3000, "args": {"op_name": "MatMul"}},
        {"cat": "Node", "name": "b_kernel_time", "dur": 1000, "args": {"op_name": "MatMul"}},
        {"cat": "Node", "name": "c_kernel_time", "dur": 1500, "args": {"op_name": "Gelu"}},
        {"cat": "Node", "name": "c_kernel_time", "dur": 500, "args": {"op_name": "Gelu"}},
        {"cat": "Node", "name": "a_fence_before", "dur": 9000, "args": {"op_name": "MatMul"}},
        {"cat": "Session", "name": "model_run", "dur": 99000, "args": {}},
    ]
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(events))
    ms, nodes = kernel_times(trace, runs=2)
    assert ms == pytest.approx({"MatMul": 2.0, "Gelu": 1.0})
    assert nodes == {"MatMul": 1, "Gelu": 1}


def test_profile_compares_bundles_on_the_same_batches(tiny_bundle, catalog_jsonl, tmp_path):
    out = tmp_path / "bench.md"
    result = CliRunner().invoke(app, ["lab", "profile", str(tiny_bundle), str(tiny_bundle), "--data", str(catalog_jsonl),
                                      "--batch", "4", "--batches", "2", "--runs", "3", "--threads", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "## Where the time goes" in text and "| LayerNormalization |" in text
    assert text.count("tiny-student 0.0.1-test (int8)") == 2 and "(1.00x)" in text
    # the recorded command is the one that reproduces the table: both bundles, then the options
    assert f"Command: `relevance lab profile {tiny_bundle} {tiny_bundle} --data {catalog_jsonl} --batch 4" in text


def test_profile_says_when_data_is_missing(tiny_bundle, tmp_path):
    result = CliRunner().invoke(app, ["lab", "profile", str(tiny_bundle), "--data", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "profiling needs real pairs" in result.stderr
