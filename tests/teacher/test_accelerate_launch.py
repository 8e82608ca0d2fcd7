"""DAPT, SFT and DPO run unchanged under ``accelerate launch`` with two processes (CPU, gloo): each rank
takes half of every epoch's batches, the main rank alone writes the teacher spec, and every rank exits 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relevance.data import load_pairs
from relevance.labels import LABELS
from tests.launch import accelerate_cli
from tests.teacher.conftest import TEXT_FIELDS
from tests.teacher.fakes import good_chain

pytest.importorskip("trl")

COMMON = ["--text-fields", ",".join(TEXT_FIELDS), "--threads", "1", "--no-bf16", "--logging-steps", "1"]


def _run(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def _preference_samples(catalog_jsonl: Path, path: Path, n_pairs: int) -> Path:
    """Per pair a correct and a wrong well-formed chain, scored by the real reward, so DPO has pairs."""
    from teacher.chains.reward import score_output
    from teacher.steps.reward_sampling import write_samples

    records = []
    for pair in load_pairs(catalog_jsonl, "train")[:n_pairs]:
        wrong = next(lbl for lbl in LABELS if lbl != pair.label)
        samples = [{"text": t, "reward": score_output(t, pair).to_json()} for t in (good_chain(pair.label), good_chain(wrong))]
        records.append({"id": pair.id, "label": pair.label, "samples": samples})
    write_samples(records, path)
    return path


def test_teacher_steps_under_two_processes(tiny_lm, catalog_jsonl, tmp_path):
    data = ["--data", str(catalog_jsonl)]
    dapt = accelerate_cli(["teacher", "dapt", "--teacher", str(tiny_lm), *data, "--out", str(tmp_path / "dapt"),
                           "--splits", "train", "--max-tokens", "4000", "--block-size", "64", "--batch-size", "8",
                           "--max-steps", "3", *COMMON], cwd=tmp_path)
    assert dapt.stdout.count("dapt: teacher") == 1  # the main rank reports, once

    sft = tmp_path / "sft"
    accelerate_cli(["teacher", "sft", "--teacher", str(tmp_path / "dapt"), *data, "--out", str(sft), "--split", "train",
                    "--n-examples", "48", "--batch-size", "4", "--max-steps", "3", "--max-length", "320", *COMMON],
                   cwd=tmp_path)
    run = _run(sft)
    assert run["optimizer_steps"] == 3 and run["teacher"]["steps"] == ["dapt", "sft"]
    # 3 steps x 4 sequences x 2 ranks = 24 of the 48 examples: half an epoch (one process would see a quarter)
    assert run["log"][-1]["epoch"] == pytest.approx(0.5)

    samples = _preference_samples(catalog_jsonl, tmp_path / "samples.jsonl", n_pairs=16)
    dpo = tmp_path / "dpo"
    accelerate_cli(["teacher", "dpo", "--teacher", str(sft), *data, "--split", "train", "--samples", str(samples),
                    "--out", str(dpo), "--batch-size", "2", "--max-steps", "2", "--max-length", "320",
                    "--selection", "margin", *COMMON], cwd=tmp_path)
    run = _run(dpo)
    assert run["optimizer_steps"] == 2 and run["preference_pairs"] == 16
    assert run["teacher"]["steps"] == ["dapt", "sft", "dpo"] and (dpo / "adapter" / "adapter_config.json").is_file()
