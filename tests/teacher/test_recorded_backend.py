"""An annotation file replayed as the teacher: ``relevance teacher eval --annotations`` measures what it recorded."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from relevance.labels import LABELS

TEACHER = {"name": "some-llm", "version": "v1", "prompt_version": "chain-v2+3shot", "attempts": 1}


def _records(pairs):
    """Every other pair labelled right, the rest wrong, the last one a failure; probabilities on the label."""
    records = []
    for i, pair in enumerate(pairs[:-1]):
        label = pair.label if i % 2 == 0 else LABELS[(LABELS.index(pair.label) + 1) % len(LABELS)]
        probs = {lbl: 0.8 if lbl == label else 0.1 for lbl in LABELS}
        records.append({"id": pair.id, "status": "ok",
                        "teacher": {"label": label, "probs": probs, "reasoning": "Wants: a drill\nType: same (drill)",
                                    **TEACHER}})
    records.append({"id": pairs[-1].id, "status": "failed",
                    "teacher": {"error": "no 'Label:' line", "output": "Wants: a dr", **TEACHER, "attempts": 3}})
    return records


def test_eval_of_an_annotation_file_scores_its_records_against_the_human_labels(catalog_jsonl, tmp_path):
    from relevance.annotations.writer import write_annotations
    from relevance.cli import app
    from relevance.data import load_pairs

    pairs = load_pairs(catalog_jsonl, "test")
    annotated = pairs[: len(pairs) - 3]  # three test pairs without a record
    other = load_pairs(catalog_jsonl, "train")[:2]  # records of another split are not test answers
    path = write_annotations(_records(annotated) + _records(other), tmp_path / "ann.jsonl")
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["teacher", "eval", "--annotations", str(path), "--data", str(catalog_jsonl),
                                      "--split", "test", "--n-pairs", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    metrics = json.loads(out.read_text())
    right = sum(1 for i in range(len(annotated) - 1) if i % 2 == 0)
    assert metrics["n"] == len(annotated)
    assert metrics["split_pairs_without_record"] == 3
    assert metrics["accuracy"] == pytest.approx(right / len(annotated))
    assert metrics["parse_failure_rate"] == pytest.approx(1 / len(annotated))  # the failed record counts as wrong
    assert metrics["teacher"]["name"] == "some-llm" and metrics["prompt_version"] == "chain-v2+3shot"
    assert metrics["parsed_only"]["n"] == len(annotated) - 1 and metrics["probs_available"] == 1.0
    assert metrics["pairs_per_s"] is None  # a replay measures no speed
    assert "macro-F1" in result.output


def test_a_replayed_record_is_the_chain_with_its_label_line_and_probabilities():
    from teacher.backends.recorded import replay
    from teacher.chains.prompts import parse_output

    record = {"id": "1", "status": "ok", "teacher": {"label": "exact", "probs": {"irrelevant": 0.1, "partial": 0.2,
                                                                                   "exact": 0.7},
                                                       "reasoning": "Wants: a drill", **TEACHER}}
    completion = replay(record)
    assert parse_output(completion.text).label == "exact" and completion.probs["exact"] == pytest.approx(0.7)
    failed = replay({"id": "2", "status": "failed", "teacher": {"error": "cut", "output": "Wants", **TEACHER}})
    assert failed.error == "cut" and parse_output(failed.text).label is None
