"""``relevance loadtest engines``: the student rebuilt from a static INT8 graph, and the engine table (numbers not judged)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from relevance.bundle import load_bundle
from relevance.cli import app


def test_the_rebuilt_student_has_every_weight_of_the_checkpoint_in_its_place(static_bundle, tiny_checkpoint):
    from export.rebuild import student_from_int8_graph
    from training.student import load_student

    original = load_student(tiny_checkpoint).state_dict()
    rebuilt = student_from_int8_graph(load_bundle(static_bundle).graph_path("int8")).state_dict()
    compared = 0
    for name, weight in original.items():
        if name.endswith("position_ids"):
            continue
        w, r = weight.numpy(), rebuilt[name].numpy()
        assert r.shape == w.shape, name
        # dequantised 8-bit weights: within a few quantisation steps of the trained ones, nowhere else
        step = (max(w.max(), 0) - min(w.min(), 0)) / 255  # 8-bit ranges always hold zero
        assert np.abs(r - w).max() <= 2 * step + 1e-6, name
        compared += 1
    assert compared == len([n for n in original if not n.endswith("position_ids")])


def test_a_graph_of_another_scheme_is_refused(tiny_bundle):
    from export.rebuild import student_from_int8_graph

    with pytest.raises(ValueError, match="static INT8 BERT graph"):
        student_from_int8_graph(load_bundle(tiny_bundle).graph_path("fp32"))


def test_engines_writes_a_row_per_engine_with_its_quality(static_bundle, catalog_jsonl, tmp_path):
    out = tmp_path / "bench.md"
    args = ["loadtest", "engines", "--bundle", str(static_bundle), "--data", str(catalog_jsonl), "--services", "4", "--requests", "3",
            "--seconds", "0.05", "--threads", "1", "--calibration-split", "train", "--calibration-pairs", "16",
            "--doc", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith(("| ORT", "| OpenVINO"))]
    # the bundle's own graph is the baseline and agrees with itself; its standard-operator twins nearly so
    assert rows[0].startswith("| ORT, the bundle's graph | int8 |") and "| 1.00x |" in rows[0]
    assert rows[0].endswith("| 100.00% |")
    assert rows[1].startswith("| ORT, QDQ graph | int8 |") and rows[2].startswith("| ORT, rebuilt fp32 graph | fp32 |")
    assert all(float(r.split("|")[-2].strip().rstrip("%")) >= 80 for r in rows[1:])
    openvino = ["OpenVINO, QDQ graph (as served)", "OpenVINO, QDQ graph, plugin's default precision",
                "OpenVINO, rebuilt fp32 graph", "OpenVINO, NNCF INT8 of the fp32 graph"]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows[3:]] == (openvino if _has_openvino() else [])
    assert f"--bundle {static_bundle} " in next(line for line in text.splitlines() if line.startswith("Command: "))
    assert text.count("<!-- engines begin -->") == 1 and text.count("<!-- engines end -->") == 1


def _has_openvino() -> bool:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True
