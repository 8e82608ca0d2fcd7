"""The oracle teacher: human labels with program-written chains, read back by the student side unchanged."""

from __future__ import annotations

import json

import pytest

from relevance.data import Pair, load_pairs
from teacher.chains.attributes import BrandLexicon
from teacher.steps.oracle import ORACLE_NAME, oracle_record, write_oracle
from training.annotations import load_annotated_pairs

LEX = BrandLexicon(frozenset({"dewalt", "ryobi"}))


def _pair(label="partial"):
    return Pair(id="7", query="dewalt cordless drill", service={"title": "Ryobi 18-Volt Cordless Drill"}, label=label)


def test_record_carries_the_human_label_and_names_the_program():
    record = oracle_record(_pair("irrelevant"), LEX, "keep")
    teacher = record.teacher
    assert record.status == "ok" and teacher.label == "irrelevant"
    assert teacher.name == ORACLE_NAME and "program" in teacher.name
    assert teacher.reasoning.splitlines()[-1] == "Label: irrelevant"
    # the findings do not depend on the label: only the last line does
    assert teacher.implied_label == "partial"  # same type, different brand


def test_dropping_the_label_line_leaves_the_findings():
    kept = oracle_record(_pair(), LEX, "keep").teacher.reasoning
    dropped = oracle_record(_pair(), LEX, "drop").teacher.reasoning
    assert "Label:" not in dropped
    assert kept == dropped + "\nLabel: partial"
    assert dropped.startswith("Wants: ") and "Brand: different" in dropped


def test_unlabelled_pairs_and_unknown_modes_are_refused():
    with pytest.raises(ValueError, match="human label"):
        oracle_record(_pair(label=None), LEX)
    with pytest.raises(ValueError, match="label_line"):
        oracle_record(_pair(), LEX, "hide")


def test_written_file_joins_onto_the_split(tmp_path, catalog_jsonl):
    pairs = [p for p in load_pairs(catalog_jsonl, "train") if p.label is not None][:40]
    out = tmp_path / "oracle.jsonl"
    summary = write_oracle(pairs, out)
    assert summary["pairs"] == 40
    assert summary["consistent"] + summary.get("inconsistent", 0) + summary.get("no_implied", 0) == 40
    assert len(out.read_text().splitlines()) == 40 and all(json.loads(line)["id"] for line in out.open())
    joined, stats = load_annotated_pairs(catalog_jsonl, "train", out)
    annotated = {p.id: p for p in joined if p.teacher is not None}
    assert set(annotated) == {p.id for p in pairs}
    for p in pairs:
        t = annotated[p.id].teacher
        assert t["label"] == p.label  # the human label, never changed
        assert t["probs"][p.label] == pytest.approx(1.0)  # no probabilities: one-hot on the label
