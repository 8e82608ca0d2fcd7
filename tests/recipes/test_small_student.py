"""``relevance shrink`` end to end on the tiny fixtures: a 1-layer student from a 2-layer bundle.

The recipe must run every stage once (annotate, distil, QAT, gated export), nest each stage's
record in the bundle, keep finished stages on a rerun, and remake only what follows a stage that
changed.
"""

from __future__ import annotations

import json
import os

import pytest

from recipes.config import SmallStudentConfig
from recipes.small_student import outdated, shrink
from relevance.annotations.reader import read_annotations
from relevance.bundle import load_bundle
from relevance.data import load_pairs
from tests.conftest import TINY_LIMITS

pytest.importorskip("torch")


@pytest.fixture()
def recipe(tmp_path, crsd_data, tiny_bundle, tiny_checkpoint) -> SmallStudentConfig:
    return SmallStudentConfig(
        data=str(crsd_data), teacher=str(tiny_bundle), out=str(tmp_path / "shrink"), seed=3, threads=1,
        name="tiny-small", version="0.0.1-test", annotate_batch_size=64, **TINY_LIMITS,
        student={"init": str(tiny_checkpoint), "layers": (0,), "text_fields": ("title", "brand", "description"),
                 "max_length": 32, "batch_size": 16, "epochs": 1, "lr": 1e-3, "head_lr": 1e-3,
                 "warmup_ratio": 0.0, "evals_per_epoch": 1},
        qat={"epochs": 1, "lr": 1e-4, "limit_train": 96, "evals_per_epoch": 1, "calibration_pairs": 64})


def test_the_recipe_runs_every_stage_and_records_the_chain_in_the_bundle(recipe, crsd_data, tiny_bundle):
    outcome = shrink(recipe, command="relevance shrink --test")
    assert outcome.ran == ["annotate", "distill", "quant-aware", "export"]

    # the teacher's soft labels cover the whole train split
    annotated, _ = read_annotations(recipe.annotations_path)
    assert set(annotated) == {p.id for p in load_pairs(crsd_data, "pool")}

    student = json.loads((recipe.stage_dir("student") / "best" / "config.json").read_text())
    assert student["num_hidden_layers"] == 1
    manifest = load_bundle(outcome.bundle).manifest
    assert manifest.name == "tiny-small" and [g.precision for g in manifest.graphs] == ["int8"]
    assert manifest.quantization["scheme"] == "static"
    qat = manifest.training
    assert qat["method"].startswith("quantisation-aware") and qat["command"] == "relevance shrink --test"
    distilled = qat["from"]
    assert distilled["preset"] == "student_kd" and distilled["human_split"] == "teacher_train"
    assert distilled["layers"] == [0]  # the kept encoder layers are part of how it was trained
    teacher = load_bundle(tiny_bundle).manifest
    name = f"{teacher.name}/{teacher.version} ({teacher.default_precision})"  # the graph that labelled
    assert distilled["teacher"] == [{"name": name, "pairs": len(annotated)}]
    assert distilled["annotations"] == str(recipe.annotations_path)
    assert set(outcome.student_test) >= {"macro_f1", "rmse"} and "test macro_f1" in outcome.summary()


def test_a_rerun_keeps_finished_stages_and_remakes_what_follows_a_newer_one(recipe):
    shrink(recipe)
    manifest = recipe.bundle_path / "bundle.json"
    exported = manifest.stat().st_mtime
    assert shrink(recipe).ran == []
    assert manifest.stat().st_mtime == exported

    distilled = recipe.stage_dir("student") / "report.json"
    later = manifest.stat().st_mtime + 10
    os.utime(distilled, (later, later))  # as if the distillation had just been rerun
    assert shrink(recipe).ran == ["quant-aware", "export"]


def test_outdated_follows_makes_rule(tmp_path):
    source, target = tmp_path / "a", tmp_path / "b"
    source.write_text("x")
    assert outdated(target, source)
    target.write_text("y")
    os.utime(source, (1, 1))
    assert not outdated(target, source)
    os.utime(source, (target.stat().st_mtime + 5,) * 2)
    assert outdated(target, source)


def test_settings_are_checked_before_any_stage_runs(crsd_data, tmp_path):
    with pytest.raises(ValueError):
        SmallStudentConfig(data=str(crsd_data), out=str(tmp_path), qat={"epochs": 0})
    with pytest.raises(ValueError):
        SmallStudentConfig(data=str(crsd_data), out=str(tmp_path), student={"targets": "bogus"})
    cfg = SmallStudentConfig(data=str(crsd_data), out=str(tmp_path), student={"layers": ("0", "2")})
    assert cfg.student.layers == (0, 2) and cfg.student.preset == "student_kd" and cfg.student.epochs == 1.0
    assert cfg.student.annotations == str(tmp_path / "annotations.jsonl")


def test_the_recipe_runs_unchanged_under_accelerate_launch(crsd_data, tiny_bundle, tiny_checkpoint, tmp_path):
    """Two processes (CPU, gloo): both train, the main one annotates and exports, one bundle results."""
    from tests.launch import accelerate_cli

    out = tmp_path / "ddp"
    proc = accelerate_cli(
        ["shrink", "--data", str(crsd_data), "--teacher", str(tiny_bundle), "--out", str(out),
         "--init", str(tiny_checkpoint), "--layers", "0", "--text-fields", "title,brand,description",
         "--max-length", "32", "--batch-size", "16", "--epochs", "1", "--lr", "1e-3", "--head-lr", "1e-3",
         "--evals-per-epoch", "1", "--qat-epochs", "1", "--qat-limit-train", "96", "--qat-calibration-pairs", "64",
         "--annotate-batch-size", "64", "--threads", "1", "--max-abs-diff", str(TINY_LIMITS["max_abs_diff"]),
         "--min-int8-agreement", str(TINY_LIMITS["min_int8_agreement"]),
         "--max-int8-f1-drop", str(TINY_LIMITS["max_int8_f1_drop"])], cwd=tmp_path, timeout=400)
    manifest = load_bundle(out / "bundle").manifest
    assert manifest.training["from"]["preset"] == "student_kd"
    assert manifest.training["command"].startswith("relevance shrink ")
    annotated, _ = read_annotations(out / "annotations.jsonl")
    assert len(annotated) == len(load_pairs(crsd_data, "pool"))  # one process wrote each pair once
    assert "test macro_f1" in proc.stdout
