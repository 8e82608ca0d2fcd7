"""The annotation contract: schema (versioned, strict on write), reader (both record shapes, failures
counted by reason, last record wins, one-hot fallback) and writer (whole file, resumable appends)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from relevance.annotations.reader import finished_ids, read_annotations, read_records
from relevance.annotations.schema import (
    ANNOTATION_SCHEMA_VERSION,
    AnnotatedRecord,
    FailedRecord,
    TeacherFailure,
    TeacherLabel,
    record_json,
    validate_record,
)
from relevance.annotations.writer import AnnotationAppender, write_annotations

ROOT = Path(__file__).resolve().parents[2]
META = {"name": "smol", "version": "sft@1", "prompt_version": "chain-v2"}


def mixed_records(ids: list[str]) -> list[dict]:
    """Usable, failed and malformed records of both shapes over six ``ids`` (the first one twice), plus
    one id outside them: what a resumed, partly failed run of older and newer writers leaves."""
    return [
        {"id": ids[0], "label": "exact", "probs": {"irrelevant": 1, "partial": 1, "exact": 2}, "reasoning": "r0",
         "teacher": "t/1", "prompt_version": "v1"},
        {"id": ids[1], "label": None, "error": "timeout"},
        {"id": ids[2], "label": "relevant"},
        {"id": ids[3], "label": "partial", "probs": "garbage"},
        {"id": "not-in-pool", "label": "exact", "probs": {"exact": 1.0}},
        {"id": ids[0], "label": "partial", "probs": {"partial": 1.0}, "reasoning": "resumed"},
        # the nested records of `relevance annotate`
        {"id": ids[4], "status": "ok", "teacher": {"label": "irrelevant", "probs": {"irrelevant": 0.8,
         "partial": 0.1, "exact": 0.1}, "reasoning": "Type: differs", "name": "smol", "version": "sft@1",
         "prompt_version": "chain-v1", "attempts": 1}},
        {"id": ids[5], "status": "failed", "teacher": {"error": "no 'Label:' line", "name": "smol"}},
    ]


def write_mixed(path: Path, ids: list[str]) -> Path:
    """:func:`mixed_records` as a file, with a line that is not JSON and a blank one at the end."""
    path.write_text("".join(json.dumps(r) + "\n" for r in mixed_records(ids)) + "{truncated\n\n")
    return path


def _ok(pair_id: str, label: str = "exact", **extra) -> AnnotatedRecord:
    return AnnotatedRecord(id=pair_id, teacher=TeacherLabel(
        label=label, probs={"irrelevant": 0.1, "partial": 0.2, "exact": 0.7}, reasoning="Type: same",
        **META, attempts=1, **extra))


def _failed(pair_id: str) -> FailedRecord:
    return FailedRecord(id=pair_id, teacher=TeacherFailure(error="no 'Label:' line", output="Wants:", **META,
                                                           attempts=3))


def test_failed_and_malformed_records_are_skipped_and_counted(tmp_path):
    ids = [f"p{i}" for i in range(6)]
    by_id, stats = read_annotations(write_mixed(tmp_path / "ann.jsonl", ids))
    assert stats.records == 9 and stats.usable == 4 and stats.duplicates == 1 and stats.one_hot_probs == 1
    assert dict(stats.failed) == {"teacher failure": 2, "unknown label": 1, "not JSON": 1}
    assert by_id[ids[0]]["reasoning"] == "resumed"  # the last record of an id wins
    assert by_id[ids[3]]["probs"] == {"irrelevant": 0.0, "partial": 1.0, "exact": 0.0}
    nested = by_id[ids[4]]
    assert nested["label"] == "irrelevant" and nested["teacher"] == "smol/sft@1"
    assert nested["reasoning"] == "Type: differs" and nested["prompt_version"] == "chain-v1"


def test_probabilities_are_normalised_over_the_labels(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"id": "p0", "label": "exact",
                                "probs": {"irrelevant": 1, "partial": 1, "exact": 2}}) + "\n")
    probs = read_annotations(path)[0]["p0"]["probs"]
    assert probs == {"irrelevant": 0.25, "partial": 0.25, "exact": 0.5}


def test_written_records_carry_the_schema_version_and_read_back(tmp_path):
    records = [_ok("1"), _failed("2"), _ok("3", "partial", implied_label="exact")]
    path = write_annotations(records, tmp_path / "sub" / "ann.jsonl")
    raw = read_records(path)
    assert raw == [record_json(r) for r in records]
    assert all(r["schema_version"] == ANNOTATION_SCHEMA_VERSION for r in raw)
    assert [validate_record(r) for r in raw] == records  # the JSON is the typed record again
    assert "output" in raw[1]["teacher"] and "implied_label" not in raw[0]["teacher"]  # absent extras left out
    assert raw[2]["teacher"]["implied_label"] == "exact"
    by_id, stats = read_annotations(path)
    assert set(by_id) == {"1", "3"} and dict(stats.failed) == {"teacher failure": 1}
    assert by_id["1"] == {"label": "exact", "probs": {"irrelevant": 0.1, "partial": 0.2, "exact": 0.7},
                          "reasoning": "Type: same", "teacher": "smol/sft@1", "prompt_version": "chain-v2"}
    # probabilities may be unknown (the oracle): written as null, read as one-hot on the label
    no_probs = AnnotatedRecord(id="4", teacher=TeacherLabel(label="partial", probs=None, **META, attempts=0))
    write_annotations([no_probs], path)
    assert read_records(path)[0]["teacher"]["probs"] is None
    by_id, stats = read_annotations(path)
    assert by_id["4"]["probs"] == {"irrelevant": 0.0, "partial": 1.0, "exact": 0.0} and stats.one_hot_probs == 1


def test_the_schema_refuses_what_it_does_not_define(tmp_path):
    good = record_json(_ok("1"))
    bad = [
        {**good, "teacher": {**good["teacher"], "label": "relevant"}},
        {**good, "teacher": {**good["teacher"], "probs": {"relevant": 1.0}}},
        {**good, "teacher": {**good["teacher"], "query": "pair text"}},  # nothing beyond the schema
        {**good, "status": "maybe"},
        {**good, "id": ""},
        {**good, "schema_version": ANNOTATION_SCHEMA_VERSION + 1},
    ]
    for obj in bad:
        with pytest.raises(ValueError):
            validate_record(obj)
    with pytest.raises(ValueError):
        write_annotations([good, bad[0]], tmp_path / "a.jsonl")
    assert not (tmp_path / "a.jsonl").exists()  # validated before anything is written
    assert validate_record({k: v for k, v in good.items() if k != "schema_version"}) == _ok("1")


def test_a_newer_schema_version_is_refused_by_the_reader(tmp_path):
    path = tmp_path / "a.jsonl"
    newer = {**record_json(_ok("1")), "schema_version": ANNOTATION_SCHEMA_VERSION + 1}
    path.write_text(json.dumps(record_json(_ok("0"))) + "\n" + json.dumps(newer) + "\n")
    with pytest.raises(ValueError, match=r"a\.jsonl:2: annotation schema_version 2 is not supported"):
        read_annotations(path)


@pytest.mark.parametrize("name", ["pool.jsonl", "oracle-teacher_train-5040.jsonl"])
def test_committed_files_without_a_schema_version_are_read(name):
    path = ROOT / "artifacts" / "annotations" / name
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout")
    with open(path, encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert "schema_version" not in first  # written before the schema was versioned
    by_id, stats = read_annotations(path)
    assert stats.usable > 0 and stats.usable + sum(stats.failed.values()) + stats.duplicates == stats.records
    assert all(set(t) == {"label", "probs", "reasoning", "teacher", "prompt_version"} for t in by_id.values())


def test_appending_resumes_after_a_cut_line(tmp_path):
    path = tmp_path / "ann.jsonl"
    with AnnotationAppender(path) as out:
        assert out.finished == set()
        out.append([_ok("1"), _failed("2")])
        assert out.finished == {"1", "2"}
    with open(path, "a") as fh:
        fh.write('{"id": "3", "status": "o')  # killed mid-write
    assert finished_ids(path) == {"1", "2"} and len(read_records(path)) == 2
    with AnnotationAppender(path) as out:
        assert out.finished == {"1", "2"}  # ok and failed ids are both finished
        out.append([_ok("3")])
        with pytest.raises(ValueError):
            out.append([_ok("4"), {"id": "5", "status": "ok"}])  # an invalid batch writes nothing
    assert [r["id"] for r in read_records(path)] == ["1", "2", "3"]
    assert path.read_text().endswith("\n")
    (tmp_path / "bad.jsonl").write_text('{"id": "1"}\nnot json\n{"id": "2"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_records(tmp_path / "bad.jsonl")


def test_the_contract_is_torch_and_stage_free():
    """``relevance`` is the bottom layer: the contract loads neither torch nor any stage."""
    code = "import sys, relevance.annotations.writer; print(' '.join(sys.modules))"
    loaded = {m.split(".")[0] for m in subprocess.check_output([sys.executable, "-c", code], cwd=ROOT, text=True,
                                                                 timeout=60).split()}
    assert not loaded & {"torch", "teacher", "training", "export", "service", "loadtest"}
