"""The teacher-strength curve: CRSD minus label-only KD per teacher, from recorded runs and transcribed rows."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lab.teacher_strength import read_spec


def _run(folder, preset, seed, f1):
    path = folder / preset / f"seed-{seed}" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"preset": preset, "seed": seed, "test": {"macro_f1": f1}, "dev": {"macro_f1": f1}}))


def _spec(tmp_path):
    record, label_line = tmp_path / "oracle", tmp_path / "oracle-label"
    for seed, (kd, crsd) in {1: (0.40, 0.44), 2: (0.42, 0.46)}.items():
        _run(record, "teacher_hard", seed, kd)
        _run(record, "crsd", seed, crsd)
        _run(record, "teacher_soft", seed, kd + 0.01)
    (tmp_path / "teacher.json").write_text(json.dumps({"n": 300, "macro_f1": 0.35, "teacher": {"name": "t"}}))
    (tmp_path / "teacher-pool.json").write_text(json.dumps({"n": 5050, "macro_f1": 0.31, "split": "pool"}))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"teachers": [
        {"name": "weak", "teacher_metrics": str(tmp_path / "teacher.json"),
         "labelled_metrics": str(tmp_path / "teacher-pool.json"),
         "transcribed": {"crsd": [0.32, 0.001, 3], "kd": [0.33, 0.003, 3]}, "source": "an old table"},
        {"name": "oracle", "teacher_macro_f1": 1.0, "labelled_macro_f1": 1.0, "record": str(record)},
        {"name": "oracle, label line", "teacher_macro_f1": 1.0, "crsd_record": str(label_line),
         "kd_record": str(record)},
    ]}))
    return spec


def test_rows_from_recorded_runs_and_transcribed_numbers(tmp_path):
    weak, oracle, pending = read_spec(_spec(tmp_path))
    assert weak.teacher_f1 == 0.35 and weak.teacher_note == "300 test pairs" and weak.source == "an old table"
    assert weak.labelled_f1 == 0.31 and oracle.labelled_f1 == 1.0 and pending.labelled_f1 is None
    assert weak.gain == pytest.approx(-0.01) and weak.gain_spread == pytest.approx((0.001**2 / 3 + 0.003**2 / 3) ** 0.5)
    assert oracle.kd[0] == pytest.approx(0.41) and oracle.crsd[0] == pytest.approx(0.45) and oracle.crsd[2] == 2
    assert oracle.gain == pytest.approx(0.04)
    assert pending.crsd[2] == 0 and pending.kd[2] == 2  # its CRSD row has no run yet
    assert oracle.soft[0] == pytest.approx(0.42) and oracle.soft[2] == 2 and weak.soft[2] == 0


def test_command_writes_the_section_and_the_plot(tmp_path):
    from relevance.cli import app

    doc, plot = tmp_path / "docs" / "results.md", tmp_path / "docs" / "img" / "curve.png"
    doc.parent.mkdir()
    doc.write_text("# Results\n\n<!-- results:teacher-strength begin -->\nSTALE BLOCK\n<!-- results:teacher-strength end -->\n")
    result = CliRunner().invoke(app, ["lab", "teacher-strength", "--spec", str(_spec(tmp_path)), "--doc", str(doc),
                                      "--plot", str(plot)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    text = doc.read_text()
    assert "STALE BLOCK" not in text and text.count("results:teacher-strength begin") == 1
    assert "| oracle | 1.0000 | 1.0000 | 0.4100 ± 0.0141 (2) | 0.4500 ± 0.0141 (2) | +0.0400 ± 0.0141 | 0.4200 ± 0.0141 (2) |" in text
    assert "| weak | 0.3500 (300 test pairs) | 0.3100 |" in text and "| not measured |" in text
    assert "not run yet" in text and "an old table" in text and "](img/curve.png)" in text
    assert plot.read_bytes()[:4] == b"\x89PNG"
