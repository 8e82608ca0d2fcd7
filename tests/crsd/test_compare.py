"""The comparison end to end on fixture data through the CLI commands: runs, metrics files, tables, plot."""

from __future__ import annotations

import json
import sys

from typer.testing import CliRunner

from relevance.cli import app
from training.config import PRESETS


def _args(tiny_init, crsd_data, crsd_annotations, tmp_path, teacher_metrics_file):
    return ["compare", "--presets", "all", "--seeds", "1", "--data", str(crsd_data),
            "--annotations", str(crsd_annotations), "--results", str(tmp_path / "results"),
            "--teacher-metrics", str(teacher_metrics_file), "--doc", str(tmp_path / "docs" / "results.md"),
            "--plot", str(tmp_path / "docs" / "results.png"), "--init", str(tiny_init), "--epochs", "1",
            "--batch-size", "16", "--threads", "1", "--latency-pairs", "5", "--max-length", "32",
            "--aug-max-length", "48", "--text-fields", "title,brand,description", "--head-lr", "1e-3"]


def test_compare_runs_every_preset_and_renders_tables_and_plot(tiny_init, crsd_data, crsd_annotations, tmp_path,
                                                                teacher_metrics_file):
    args = _args(tiny_init, crsd_data, crsd_annotations, tmp_path, teacher_metrics_file)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    runs = {p: json.loads((tmp_path / "results" / p / "seed-1" / "metrics.json").read_text()) for p in PRESETS}
    for run in runs.values():
        assert {"macro_f1", "accuracy", "f1", "ndcg@10", "rmse"} <= set(run["test"])
        assert run["command"].startswith("relevance compare --presets ") and " --max-length 32" in run["command"]
    pool_annotated = runs["crsd"]["distillation"]["annotation_stats"]["matched"]
    assert runs["human_budget"]["n_train"] == pool_annotated < runs["human_full"]["n_train"]
    assert runs["teacher_hard"]["steps"] == runs["human_budget"]["steps"] == runs["crsd"]["steps"]

    doc = (tmp_path / "docs" / "results.md").read_text()
    assert "<!-- results:homedepot begin -->" in doc and "one seed" in doc
    for preset in PRESETS:
        assert f"| `{preset}`" in doc
    assert "| teacher: synthetic-fixture/0 |" in doc and "%" in doc and "Compression" in doc
    assert "![test macro-F1 per run](results.png)" in doc
    assert (tmp_path / "docs" / "results.png").read_bytes()[:4] == b"\x89PNG"

    # a rerun resumes: finished runs are not trained again, the section is replaced, not appended
    stamp = (tmp_path / "results" / "crsd" / "seed-1" / "metrics.json").stat().st_mtime_ns
    assert CliRunner().invoke(app, args + ["--presets", "crsd"]).exit_code == 0
    assert (tmp_path / "results" / "crsd" / "seed-1" / "metrics.json").stat().st_mtime_ns == stamp
    assert (tmp_path / "docs" / "results.md").read_text().count("results:homedepot begin") == 1


def test_recorded_metrics_outlive_the_checkpoints(tiny_init, crsd_data, crsd_annotations, tmp_path,
                                                  teacher_metrics_file):
    import shutil

    record = tmp_path / "record"
    args = _args(tiny_init, crsd_data, crsd_annotations, tmp_path, teacher_metrics_file) + [
        "--presets", "teacher_hard", "--record", str(record)]
    assert CliRunner().invoke(app, args).exit_code == 0
    metrics = record / "teacher_hard" / "seed-1" / "metrics.json"
    assert metrics.is_file() and (record / "latency.json").is_file()
    assert (tmp_path / "results" / "teacher_hard" / "seed-1" / "best").is_dir()
    assert not (tmp_path / "results" / "teacher_hard" / "seed-1" / "metrics.json").exists()
    # a later session without the checkpoints: the recorded run is not retrained and still rendered
    shutil.rmtree(tmp_path / "results")
    stamp = metrics.stat().st_mtime_ns
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert metrics.stat().st_mtime_ns == stamp and not (tmp_path / "results").exists()
    assert "| `teacher_hard`" in (tmp_path / "docs" / "results.md").read_text()
    # adding seeds with other settings would mix them in one row: refused, nothing trained
    result = CliRunner().invoke(app, args + ["--epochs", "2", "--seeds", "1,2"])
    assert result.exit_code != 0 and "epochs=1.0 (now 2.0)" in str(result.exception)
    assert not (record / "teacher_hard" / "seed-2").exists()


def test_cli_module_imports_without_torch():
    import subprocess

    code = "import sys, relevance.cli.student; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_distill_command_writes_a_plain_checkpoint(tiny_init, crsd_data, crsd_annotations, tmp_path):
    out = tmp_path / "distilled"
    result = CliRunner().invoke(app, [
        "distill", "--preset", "crsd_no_kl", "--data", str(crsd_data), "--annotations", str(crsd_annotations),
        "--out", str(out), "--init", str(tiny_init), "--epochs", "1", "--batch-size", "16", "--threads", "1",
        "--max-length", "32", "--aug-max-length", "48", "--kl-weight", "0",
    ])
    assert result.exit_code == 0, result.output + repr(result.exception)
    meta = json.loads((out / "best" / "student.json").read_text())
    assert meta["distillation"]["preset"] == "crsd_no_kl" and meta["config"]["max_length"] == 32
    training = meta["training"]
    assert training["preset"] == "crsd_no_kl" and training["method"] == PRESETS["crsd_no_kl"].description
    assert training["teacher"][0]["name"] and training["teacher"][0]["pairs"] > 0
    assert training["command"].startswith("relevance distill --preset crsd_no_kl") and "--kl-weight 0" in training["command"]
    bad = CliRunner().invoke(app, ["distill", "--no-such-field", "1"])
    assert bad.exit_code != 0


def test_teacher_eval_output_is_read_as_teacher_metrics(tmp_path):
    from lab.compare import read_teacher_metrics

    path = tmp_path / "teacher_eval.json"
    path.write_text(json.dumps({
        "n": 300, "accuracy": 0.6, "macro_f1": 0.5, "f1": {"irrelevant": 0.3, "partial": 0.6, "exact": 0.6},
        "parse_failure_rate": 0.02, "parsed_only": {"n": 294, "macro_f1": 0.52, "ndcg@10": 0.8, "rmse": 0.6},
        "teacher": {"name": "SmolLM2", "version": "dpo@3", "path": "x"}, "split": "test", "pairs_per_s": 2.0,
        "balanced": False,
    }))
    teacher = read_teacher_metrics(path)
    assert teacher["name"] == "SmolLM2 dpo@3" and teacher["latency_ms"] == 500.0
    # the headline (failures count as wrong) wins; ranking and RMSE come from the parsed pairs
    assert teacher["test"]["macro_f1"] == 0.5 and teacher["test"]["rmse"] == 0.6 and teacher["n"] == 300
