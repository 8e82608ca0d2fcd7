"""Joining teacher annotations onto pairs: failed records skipped and counted, never given a label.

Reading annotation files (record shapes, failure reasons, probabilities) is tested with the contract,
in ``tests/relevance/test_annotations.py``."""

from __future__ import annotations

import json

import pytest

from relevance.data import load_pairs
from tests.fixtures import DEPARTMENTS
from tests.relevance.test_annotations import write_mixed
from training.annotations import (
    load_annotated_pairs,
    synthetic_annotations,
    teacher_metrics,
)


def test_failed_and_unknown_records_are_left_out_of_the_join(tmp_path, crsd_data):
    pool = load_pairs(crsd_data, "pool")
    path = write_mixed(tmp_path / "ann.jsonl", [p.id for p in pool[:6]])
    pairs, stats = load_annotated_pairs(crsd_data, "pool", path)
    assert [p.id for p in pairs] == [pool[0].id, pool[3].id, pool[4].id]
    assert stats.matched == 3 and stats.unknown_ids == 1 and stats.unannotated_pairs == len(pool) - 3
    assert pairs[0].label == pool[0].label  # the human label stays; the teacher's sits beside it
    assert pairs[0].teacher["reasoning"] == "resumed"


def test_no_usable_annotation_is_an_error(tmp_path, crsd_data):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"id": "x", "label": None, "error": "boom"}) + "\n")
    with pytest.raises(ValueError, match="annotate that split first"):
        load_annotated_pairs(crsd_data, "pool", path)


def test_synthetic_annotations_follow_the_fixture_rule_with_noise(crsd_data, crsd_annotations):
    pairs, stats = load_annotated_pairs(crsd_data, "pool", crsd_annotations)
    assert stats.failed["teacher failure"] >= 1 and stats.teachers == {"synthetic-fixture/0": stats.usable}
    agreement = sum(p.teacher["label"] == p.label for p in pairs) / len(pairs)
    assert 0.8 <= agreement < 1.0
    for p in pairs:
        assert sum(p.teacher["probs"].values()) == pytest.approx(1.0, abs=1e-3)
        assert max(p.teacher["probs"], key=p.teacher["probs"].get) == p.teacher["label"]
        assert " for the " in p.teacher["reasoning"]
    metrics = teacher_metrics(pairs)
    assert metrics["n"] == len(pairs) and metrics["accuracy"] == pytest.approx(agreement)
    assert synthetic_annotations(pairs[:5], DEPARTMENTS, seed=3) == synthetic_annotations(pairs[:5], DEPARTMENTS, seed=3)
