"""Joining teacher annotations onto pairs: failed records skipped and counted, never given a label."""

from __future__ import annotations

import json

import pytest

from relevance.data import load_pairs
from tests.fixtures import DEPARTMENTS
from training.annotations import (
    load_annotated_pairs,
    read_annotations,
    synthetic_annotations,
    teacher_metrics,
)


def test_failed_and_malformed_records_are_skipped_and_counted(tmp_path, crsd_data):
    pool = load_pairs(crsd_data, "pool")
    lines = [
        {"id": pool[0].id, "label": "exact", "probs": {"irrelevant": 1, "partial": 1, "exact": 2}, "reasoning": "r0",
         "teacher": "t/1", "prompt_version": "v1"},
        {"id": pool[1].id, "label": None, "error": "timeout"},
        {"id": pool[2].id, "label": "relevant"},
        {"id": pool[3].id, "label": "partial", "probs": "garbage"},
        {"id": "not-in-pool", "label": "exact", "probs": {"exact": 1.0}},
        {"id": pool[0].id, "label": "partial", "probs": {"partial": 1.0}, "reasoning": "resumed"},
        # the nested records of `relevance annotate`
        {"id": pool[4].id, "status": "ok", "teacher": {"label": "irrelevant", "probs": {"irrelevant": 0.8,
         "partial": 0.1, "exact": 0.1}, "reasoning": "Type: differs", "name": "smol", "version": "sft@1",
         "prompt_version": "chain-v1", "attempts": 1}},
        {"id": pool[5].id, "status": "failed", "teacher": {"error": "no 'Label:' line", "name": "smol"}},
    ]
    path = tmp_path / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + "{truncated\n\n")
    by_id, stats = read_annotations(path)
    assert stats.records == 9 and stats.usable == 4 and stats.duplicates == 1 and stats.one_hot_probs == 1
    assert dict(stats.failed) == {"teacher failure": 2, "unknown label": 1, "not JSON": 1}
    assert by_id[pool[0].id]["reasoning"] == "resumed"  # the last record of an id wins
    assert by_id[pool[3].id]["probs"] == {"irrelevant": 0.0, "partial": 1.0, "exact": 0.0}
    nested = by_id[pool[4].id]
    assert nested["label"] == "irrelevant" and nested["teacher"] == "smol/sft@1"
    assert nested["reasoning"] == "Type: differs" and nested["prompt_version"] == "chain-v1"

    pairs, stats = load_annotated_pairs(crsd_data, "pool", path)
    assert [p.id for p in pairs] == [pool[0].id, pool[3].id, pool[4].id]
    assert stats.matched == 3 and stats.unknown_ids == 1 and stats.unannotated_pairs == len(pool) - 3
    assert pairs[0].label == pool[0].label  # the human label stays; the teacher's sits beside it


def test_probabilities_are_normalised_over_the_labels(tmp_path, crsd_data):
    pool = load_pairs(crsd_data, "pool")
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"id": pool[0].id, "label": "exact",
                                "probs": {"irrelevant": 1, "partial": 1, "exact": 2}}) + "\n")
    probs = read_annotations(path)[0][pool[0].id]["probs"]
    assert probs == {"irrelevant": 0.25, "partial": 0.25, "exact": 0.5}


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
