"""Fixture data for CRSD: a catalog with the Home Depot split names, synthetic annotations, teacher metrics.

Used by the CRSD tests (``conftest.py``) and, as a script, for the fixture smoke run shown in
``docs/results.md``::

    python -m tests.crsd.fixture_data runs/crsd-fixture-smoke

The annotations come from :func:`training.annotations.synthetic_annotations` (the fixture's own
labelling rule with noise): test data standing in for a teacher, never a teacher's output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.fixtures import DEPARTMENTS, catalog_records, make_tiny_bert

SPLITS = (("teacher_train", 0.4), ("pool", 0.3), ("dev", 0.15), ("test", 0.15))
TEACHER = "synthetic-fixture/0"


def write_crsd_catalog(path: Path, n: int = 500, seed: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in catalog_records(n, seed=seed, split_weights=SPLITS)))
    return path


def write_pool_annotations(data: Path, path: Path) -> Path:
    from relevance.annotations.writer import write_annotations
    from relevance.data import load_pairs
    from training.annotations import synthetic_annotations

    return write_annotations(synthetic_annotations(load_pairs(data, "pool"), DEPARTMENTS, noise=0.1, seed=0), path)


def write_teacher_metrics(data: Path, path: Path) -> Path:
    """The synthetic teacher's test-split metrics, as a teacher evaluation would write them."""
    from relevance.annotations.reader import AnnotationStats, parse_record
    from relevance.data import load_pairs
    from training.annotations import attach_annotations, synthetic_annotations, teacher_metrics

    test = load_pairs(data, "test")
    records = synthetic_annotations(test, DEPARTMENTS, noise=0.1, failure_rate=0, seed=1)
    annotated = attach_annotations(test, dict(parse_record(r)[:2] for r in records), AnnotationStats())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"teacher": TEACHER, "parameters": 1_000_000, "latency_ms": 900.0,
                                "test": teacher_metrics(annotated)}))
    return path


def main(root: str, *compare_args: str) -> None:
    """Write the fixture files under ``root`` and run ``compare`` on them (extra args are passed on)."""
    from relevance.cli import app

    root_path = Path(root)
    data = write_crsd_catalog(root_path / "catalog.jsonl")
    annotations = write_pool_annotations(data, root_path / "pool_annotations.jsonl")
    teacher = write_teacher_metrics(data, root_path / "teacher_test.json")
    init = root_path / "tiny-bert"
    if not init.is_dir():
        make_tiny_bert(init, hidden=64)
    sys.argv = ["python -m tests.crsd.fixture_data", root, *compare_args]  # recorded as the command
    app(["compare", "--data", str(data), "--annotations", str(annotations), "--teacher-metrics", str(teacher),
           "--init", str(init), "--results", str(root_path / "results"), "--max-length", "32",
           "--aug-max-length", "48", "--text-fields", "title,brand,description", *compare_args])


if __name__ == "__main__":
    main(*sys.argv[1:])
