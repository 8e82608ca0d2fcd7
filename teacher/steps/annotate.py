"""Annotate a split with the teacher: batched, resumable, shardable, one JSONL record per pair.

Records are those of :mod:`relevance.annotations.schema` (ids and teacher outputs only; no text
copied from the data), written through :class:`relevance.annotations.writer.AnnotationAppender`.

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
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relevance.annotations.schema import AnnotatedRecord, FailedRecord, TeacherFailure, TeacherLabel
from relevance.annotations.writer import AnnotationAppender
from relevance.data import Pair, load_pairs
from teacher.backends.base import Completion, TeacherBackend
from teacher.chains.prompts import parse_output
from teacher.settings import GenerateBase

log = logging.getLogger(__name__)
MAX_FAILED_OUTPUT_CHARS = 300


def shard_index(spec: str) -> tuple[int, int]:
    """Parse ``'i/n'`` (0 <= i < n)."""
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {spec!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"shard {spec!r}: need 0 <= i < n")
    return i, n


@dataclass
class AnnotateConfig(GenerateBase):
    """Label a split with the teacher: resumable, shardable, one JSONL record per pair."""

    out: str = field(default="artifacts/annotations/pool.jsonl", metadata={"help": "annotation JSONL to append to"})
    split: str = field(default="pool", metadata={"help": "split to annotate"})
    shard: str = field(default="0/1", metadata={"help": "'i/n': annotate only shard i of n (by a hash of the id)"})
    limit: int = field(default=0, metadata={"help": "annotate at most N pairs of this shard (0 = all)"})
    retries: int = field(default=2, metadata={"help": "sampled retries of a malformed output before 'failed'"})

    def __post_init__(self) -> None:
        super().__post_init__()
        shard_index(self.shard)
        if self.retries < 0:
            raise ValueError("retries must be >= 0")


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
    return {"name": backend.name, "version": backend.version, "prompt_version": backend.prompt_version}


def label_batch(backend: TeacherBackend, pairs: Sequence[Pair],
                retries: int) -> list[AnnotatedRecord | FailedRecord]:
    """One record per pair: greedy first, sampled retries for malformed outputs, then ``failed``."""
    results: list[AnnotatedRecord | FailedRecord | None] = [None] * len(pairs)
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
                results[i] = AnnotatedRecord(id=pairs[i].id, teacher=TeacherLabel(
                    label=parsed.label, probs=completion.probs, reasoning=parsed.reasoning,
                    **_meta(backend), attempts=attempt + 1))
            else:
                still.append(i)
        pending = still
    for i in pending:
        c = last[i]
        error = c.error or parse_output(c.text).error
        results[i] = FailedRecord(id=pairs[i].id, teacher=TeacherFailure(
            error=error, output=c.text[:MAX_FAILED_OUTPUT_CHARS], **_meta(backend), attempts=retries + 1))
    return results  # type: ignore[return-value]


def annotate_pairs(backend: TeacherBackend, pairs: Sequence[Pair], out: str | Path, retries: int = 2,
                   batch_size: int = 8, progress: bool = True, desc: str = "annotate") -> AnnotateSummary:
    """Append one record per unfinished pair to ``out`` (see the module docstring)."""
    from tqdm.auto import tqdm

    ok = failed = 0
    with AnnotationAppender(out) as writer:
        todo = [p for p in pairs if p.id not in writer.finished]
        start = time.perf_counter()
        with tqdm(total=len(todo), unit="pair", desc=desc, disable=not progress, smoothing=0.1) as bar:
            for batch in _chunks(todo, batch_size):
                records = label_batch(backend, batch, retries)
                writer.append(records)
                n_ok = sum(r.status == "ok" for r in records)
                ok, failed = ok + n_ok, failed + len(records) - n_ok
                bar.update(len(records))
                bar.set_postfix(ok=ok, failed=failed)
    return AnnotateSummary(len(pairs), len(pairs) - len(todo), ok, failed, time.perf_counter() - start)


def annotate(cfg: AnnotateConfig, backend: TeacherBackend | None = None, progress: bool = True) -> AnnotateSummary:
    """Annotate shard ``cfg.shard`` of ``cfg.split`` into ``cfg.out`` with the local teacher (or ``backend``)."""

    pairs = shard_pairs(load_pairs(cfg.data, cfg.split), cfg.shard, cfg.limit)
    if backend is None:
        from teacher.backends.local import LocalBackend

        backend = LocalBackend.from_teacher(cfg.teacher, cfg.template(),
                                            cfg.generation, dtype=cfg.dtype, threads=cfg.threads)
    summary = annotate_pairs(backend, pairs, cfg.out, cfg.retries, cfg.generation.batch_size, progress,
                             desc=f"annotate {cfg.split} shard {cfg.shard}")
    log.info("annotated %d ok, %d failed, %d already done of %d (%.2f pairs/s)", summary.ok, summary.failed,
             summary.skipped, summary.total, summary.pairs_per_s)
    return summary
