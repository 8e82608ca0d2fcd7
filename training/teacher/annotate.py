"""Annotate a split with the teacher: batched, resumable, shardable, one JSONL record per pair.

Record (ids and teacher outputs only; no text copied from the data)::

    {"id": "123", "status": "ok",
     "teacher": {"label": "partial", "probs": {"irrelevant": 0.1, "partial": 0.7, "exact": 0.2},
                 "reasoning": "Wants: ...\\nType: same (drill)\\n...", "name": "SmolLM2-135M-Instruct",
                 "version": "dapt+sft+dpo@...", "prompt_version": "chain-v1", "attempts": 1}}
    {"id": "124", "status": "failed",
     "teacher": {"error": "no 'Label:' line ...", "output": "<first 300 chars>", "name": ..., "version": ...,
                 "prompt_version": ..., "attempts": 3}}

* **order and shards**: pairs are ordered by ``sha1(id)`` (so any prefix is a random sample of
  the split) and shard ``i/n`` takes the ids with ``sha1(id) mod n == i``; shards are disjoint
  and together cover the split, so many workers or GPUs can split a pool and their files are
  concatenated.
* **resumable**: finished ids (``ok`` and ``failed``) already in ``out`` are skipped; a last
  line cut by a kill is dropped before appending; each batch is flushed and fsynced.
* **malformed outputs**: the greedy output is parsed; a pair without one unambiguous label is
  retried ``retries`` times with sampling, then recorded as ``failed``: it never gets a label.

The distillation side reads these files with :func:`training.annotations.load_annotated_pairs`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from relevance.data import Pair, load_pairs
from training.teacher.config import AnnotateConfig, shard_index
from training.teacher.generation import Completion, TeacherBackend
from training.teacher.prompts import parse_output

log = logging.getLogger(__name__)
MAX_FAILED_OUTPUT_CHARS = 300


def id_hash(pair_id: str) -> int:
    return int(hashlib.sha1(pair_id.encode("utf-8")).hexdigest()[:15], 16)


def shard_pairs(pairs: Sequence[Pair], shard: str = "0/1", limit: int = 0) -> list[Pair]:
    """The pairs of shard ``'i/n'`` in ``sha1(id)`` order, cut to ``limit`` (0 = all); duplicate ids dropped."""
    i, n = shard_index(shard)
    seen: set[str] = set()
    out = []
    for pair in sorted(pairs, key=lambda p: id_hash(p.id)):
        if pair.id in seen or id_hash(pair.id) % n != i:
            continue
        seen.add(pair.id)
        out.append(pair)
    return out[:limit] if limit else out


def read_records(path: str | Path, repair: bool = False) -> list[dict]:
    """Records of an annotation file. A final line without newline (a kill mid-write) is ignored,
    and with ``repair`` cut off the file so appending continues cleanly."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        log.warning("%s: dropping an unfinished last line (%d bytes)", path, len(data) - len(complete))
        with open(path, "r+b") as fh:
            fh.truncate(len(complete))
    records = []
    for n, line in enumerate(complete.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise ValueError(f"{path}:{n}: not a JSON record; fix or remove the line and resume") from None
    return records


def finished_ids(path: str | Path, repair: bool = False) -> set[str]:
    return {str(r["id"]) for r in read_records(path, repair)}


@dataclass
class AnnotateSummary:
    total: int  # pairs in this shard (after limit)
    skipped: int  # already finished before this run
    ok: int
    failed: int
    seconds: float

    @property
    def pairs_per_s(self) -> float:
        return (self.ok + self.failed) / self.seconds if self.seconds > 0 else float("nan")


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _meta(backend: TeacherBackend) -> dict:
    return {"name": backend.name, "version": backend.version, "prompt_version": backend.template.version}


def label_batch(backend: TeacherBackend, pairs: Sequence[Pair], retries: int) -> list[dict]:
    """One record per pair: greedy first, sampled retries for malformed outputs, then ``failed``."""
    results: list[dict | None] = [None] * len(pairs)
    last: list[Completion | None] = [None] * len(pairs)
    pending = list(range(len(pairs)))
    for attempt in range(retries + 1):
        if not pending:
            break
        outputs = backend.complete([pairs[i] for i in pending], sample=attempt > 0, n=1)
        still = []
        for i, (completion,) in zip(pending, outputs):
            last[i] = completion
            parsed = parse_output(completion.text) if completion.error is None else None
            if parsed is not None and parsed.ok:
                results[i] = {"id": pairs[i].id, "status": "ok", "teacher": {
                    "label": parsed.label, "probs": completion.probs, "reasoning": parsed.reasoning,
                    **_meta(backend), "attempts": attempt + 1}}
            else:
                still.append(i)
        pending = still
    for i in pending:
        c = last[i]
        error = c.error or parse_output(c.text).error
        results[i] = {"id": pairs[i].id, "status": "failed", "teacher": {
            "error": error, "output": c.text[:MAX_FAILED_OUTPUT_CHARS], **_meta(backend), "attempts": retries + 1}}
    return results  # type: ignore[return-value]


def annotate_pairs(backend: TeacherBackend, pairs: Sequence[Pair], out: str | Path, retries: int = 2,
                   batch_size: int = 8, progress: bool = True, desc: str = "annotate") -> AnnotateSummary:
    """Append one record per unfinished pair to ``out`` (see the module docstring)."""
    from tqdm.auto import tqdm

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = finished_ids(out, repair=True)
    todo = [p for p in pairs if p.id not in done]
    ok = failed = 0
    start = time.perf_counter()
    with open(out, "a", encoding="utf-8") as fh, tqdm(total=len(todo), unit="pair", desc=desc,
                                                       disable=not progress, smoothing=0.1) as bar:
        for batch in _chunks(todo, batch_size):
            records = label_batch(backend, batch, retries)
            fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            fh.flush()
            os.fsync(fh.fileno())
            n_ok = sum(r["status"] == "ok" for r in records)
            ok, failed = ok + n_ok, failed + len(records) - n_ok
            bar.update(len(records))
            bar.set_postfix(ok=ok, failed=failed)
    return AnnotateSummary(len(pairs), len(pairs) - len(todo), ok, failed, time.perf_counter() - start)


def annotate(cfg: AnnotateConfig, backend: TeacherBackend | None = None, progress: bool = True) -> AnnotateSummary:
    """Annotate shard ``cfg.shard`` of ``cfg.split`` into ``cfg.out`` with the local teacher (or ``backend``)."""

    pairs = shard_pairs(load_pairs(cfg.data, cfg.split), cfg.shard, cfg.limit)
    if backend is None:
        from training.teacher.generation import LocalBackend

        backend = LocalBackend.from_teacher(cfg.teacher, cfg.template(),
                                            cfg.generation, dtype=cfg.dtype, threads=cfg.threads)
    summary = annotate_pairs(backend, pairs, cfg.out, cfg.retries, cfg.generation.batch_size, progress,
                             desc=f"annotate {cfg.split} shard {cfg.shard}")
    log.info("annotated %d ok, %d failed, %d already done of %d (%.2f pairs/s)", summary.ok, summary.failed,
             summary.skipped, summary.total, summary.pairs_per_s)
    return summary
