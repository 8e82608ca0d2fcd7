"""A bundle as the teacher: its probabilities become soft labels through the annotation step."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner


def test_annotate_with_a_bundle_writes_its_probabilities(tiny_bundle, catalog_jsonl, tmp_path):
    from relevance.bundle import load_bundle
    from relevance.cli import app
    from relevance.data import load_pairs
    from relevance.model import BundleModel
    from training.annotations import load_annotated_pairs

    out = tmp_path / "soft.jsonl"
    result = CliRunner().invoke(app, ["annotate", "--backend", "bundle", "--teacher", str(tiny_bundle), "--data",
                                      str(catalog_jsonl), "--split", "test", "--out", str(out), "--batch-size", "16"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    pairs = load_pairs(catalog_jsonl, "test")
    assert len(records) == len(pairs) and all(r["status"] == "ok" for r in records)
    model = BundleModel.load(load_bundle(tiny_bundle))
    by_id = {p.id: p for p in pairs}
    expected = model.predict_probs([by_id[r["id"]].query for r in records], [by_id[r["id"]].service for r in records])
    for record, row in zip(records, expected):
        teacher = record["teacher"]
        assert teacher["name"] == "tiny-student" and teacher["reasoning"] == ""
        probs = [teacher["probs"][label] for label in ("irrelevant", "partial", "exact")]
        assert probs == pytest.approx(row.tolist(), abs=1e-6)
        assert teacher["label"] == ("irrelevant", "partial", "exact")[int(np.argmax(row))]
    # the student side reads them as soft targets
    joined, stats = load_annotated_pairs(catalog_jsonl, "test", out)
    assert stats.usable == len(pairs) and stats.one_hot_probs == 0
