"""Annotation bookkeeping with a scripted backend: records, retries, failures, shards and resuming
after a kill (no duplicates, no gaps)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relevance.annotations.reader import finished_ids, read_records
from relevance.annotations.schema import ANNOTATION_SCHEMA_VERSION
from relevance.data import load_pairs
from relevance.labels import LABELS
from teacher.chains.prompts import PROMPT_VERSION
from teacher.steps.annotate import annotate_pairs, shard_pairs
from tests.teacher.fakes import ScriptedBackend

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pairs(catalog_jsonl):
    return shard_pairs(load_pairs(catalog_jsonl, "test"))


def _ids(path) -> list[str]:
    return [r["id"] for r in read_records(path)]


def test_records_retries_and_failures(tmp_path, pairs):
    out = tmp_path / "ann.jsonl"
    summary = annotate_pairs(ScriptedBackend(), pairs, out, retries=2, batch_size=16, progress=False)
    records = read_records(out)
    assert len(records) == len(pairs) == summary.ok + summary.failed
    for r in records:
        t = r["teacher"]
        assert set(r) == {"schema_version", "id", "status", "teacher"}  # ids and teacher outputs only: no pair text
        assert r["schema_version"] == ANNOTATION_SCHEMA_VERSION
        assert t["name"] == "scripted" and t["version"] == "1" and t["prompt_version"] == PROMPT_VERSION
        k = int(r["id"]) % 7
        if k == 0:  # always malformed: retried, then failed, never labelled
            assert r["status"] == "failed" and "label" not in t and t["attempts"] == 3
            assert "no 'Label:'" in t["error"] and t["output"].startswith("Wants:")
        else:
            assert r["status"] == "ok" and t["label"] in LABELS
            assert t["attempts"] == (2 if k == 1 else 1)  # malformed greedy output, fine when sampled
            assert sum(t["probs"].values()) == pytest.approx(1.0)
            assert t["reasoning"].startswith("Wants:") and "Label" not in t["reasoning"]
    assert summary.failed == sum(int(p.id) % 7 == 0 for p in pairs)


def test_shards_are_disjoint_and_cover_the_split(catalog_jsonl):
    everything = load_pairs(catalog_jsonl, "test")
    shards = [shard_pairs(everything, f"{i}/3") for i in range(3)]
    ids = [p.id for s in shards for p in s]
    assert len(ids) == len(set(ids)) == len(everything)
    assert all(shards)
    assert shard_pairs(everything, "1/3", limit=5) == shards[1][:5]
    with pytest.raises(ValueError):
        shard_pairs(everything, "3/3")


def test_restart_skips_finished_ids(tmp_path, pairs):
    out = tmp_path / "ann.jsonl"
    with pytest.raises(KeyboardInterrupt):
        annotate_pairs(ScriptedBackend(fail_after_calls=3), pairs, out, retries=0, batch_size=4, progress=False)
    first = _ids(out)
    assert 0 < len(first) < len(pairs)
    backend = ScriptedBackend()
    summary = annotate_pairs(backend, pairs, out, retries=0, batch_size=4, progress=False)
    ids = _ids(out)
    assert sorted(ids) == sorted(p.id for p in pairs) and len(ids) == len(set(ids))
    assert summary.skipped == len(first)
    asked = {i for call, _ in backend.calls for i in call}
    assert asked.isdisjoint(first)  # finished ids were not generated again


def test_unfinished_last_line_is_dropped_and_repaired(tmp_path, pairs):
    out = tmp_path / "ann.jsonl"
    annotate_pairs(ScriptedBackend(), pairs[:5], out, retries=0, batch_size=5, progress=False)
    with open(out, "a") as fh:
        fh.write('{"id": "' + pairs[5].id + '", "status": "o')  # killed mid-write
    assert finished_ids(out) == {p.id for p in pairs[:5]}
    annotate_pairs(ScriptedBackend(), pairs[:8], out, retries=0, batch_size=5, progress=False)
    assert _ids(out) == [p.id for p in pairs[:8]]
    (tmp_path / "bad.jsonl").write_text('{"id": "1"}\nnot json\n{"id": "2"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_records(tmp_path / "bad.jsonl")


def test_sigkill_and_resume_leaves_no_duplicates_or_gaps(tmp_path, catalog_jsonl, pairs):
    out = tmp_path / "ann.jsonl"
    code = f"from tests.teacher.fakes import run_slow_annotation; run_slow_annotation({str(catalog_jsonl)!r}, {str(out)!r})"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
            time.sleep(0.05)
        assert proc.poll() is None, "the annotation finished before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = len(read_records(out))
    assert 4 <= killed_at < len(pairs)
    annotate_pairs(ScriptedBackend(), pairs, out, retries=1, batch_size=2, progress=False)
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == len(pairs)
    assert set(ids) == {p.id for p in pairs}


def test_records_are_what_the_distillation_reader_expects(tmp_path, catalog_jsonl, pairs):
    from training.annotations import load_annotated_pairs

    out = tmp_path / "ann.jsonl"
    annotate_pairs(ScriptedBackend(), pairs, out, retries=0, batch_size=10, progress=False)
    records = read_records(out)
    ok = {r["id"]: r["teacher"] for r in records if r["status"] == "ok"}
    annotated, stats = load_annotated_pairs(catalog_jsonl, "test", out)
    assert {p.id for p in annotated} == set(ok) and stats.usable == len(ok)
    assert sum(stats.failed.values()) == len(records) - len(ok)
    for p in annotated:
        assert p.teacher["label"] == ok[p.id]["label"] and p.teacher["prompt_version"] == PROMPT_VERSION
        assert p.teacher["probs"] == pytest.approx(ok[p.id]["probs"])
