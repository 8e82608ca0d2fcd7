"""Teacher annotations: read the teacher's JSONL, join it onto pairs by id, and write synthetic ones.

One record per line, keyed by the data's pair id (ids and teacher outputs only). The records of
``relevance annotate`` (:mod:`training.teacher.annotate`)::

    {"id": "123", "status": "ok",
     "teacher": {"label": "partial", "probs": {"irrelevant": 0.1, "partial": 0.7, "exact": 0.2},
                 "reasoning": "...", "name": "SmolLM2-135M-Instruct", "version": "dapt+sft+dpo@...",
                 "prompt_version": "chain-v1", "attempts": 1}}
    {"id": "124", "status": "failed", "teacher": {"error": "no 'Label:' line", ...}}

and the flat form ``{"id", "label", "probs", "reasoning", "teacher": "name/version", "prompt_version"}``
are both read.

A record is *failed* and skipped (counted by reason, never given a label) when the line is not
JSON, has no id, has ``status`` ``failed`` or carries ``"error"`` / ``"failed"``, or its label is
missing or not one of :data:`~relevance.labels.LABELS`. Probabilities are re-normalised over the
labels; a record without usable ``probs`` falls back to a one-hot distribution on its label
(counted). When an id appears twice (a resumed run), the last record wins.

:func:`synthetic_annotations` writes such a file for fixture data (tests, development): label from
the fixture's rule with some noise, peaked probabilities, a short reasoning that names product
types and departments. It is test data, never a teacher's output.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from relevance.data import Pair, load_pairs
from relevance.labels import DEFAULT_RATINGS, LABELS
from relevance.metrics import evaluate

log = logging.getLogger(__name__)

SYNTHETIC_TEACHER = "synthetic-fixture/0"


class AnnotationError(ValueError):
    """One annotation record is unusable; the message is the reason it is counted under."""


@dataclass
class AnnotationStats:
    """What reading and joining an annotation file found (logged, and kept in the run's metadata)."""

    records: int = 0
    usable: int = 0
    duplicates: int = 0
    one_hot_probs: int = 0
    failed: Counter = field(default_factory=Counter)
    matched: int = 0
    unannotated_pairs: int = 0
    unknown_ids: int = 0
    teachers: Counter = field(default_factory=Counter)

    def to_json(self) -> dict:
        return {**self.__dict__, "failed": dict(self.failed), "teachers": dict(self.teachers)}


def _probs(obj: dict, label: str) -> tuple[dict[str, float], bool]:
    raw = obj.get("probs")
    if isinstance(raw, Mapping):
        try:
            values = [float(raw.get(lbl, 0.0)) for lbl in LABELS]
        except (TypeError, ValueError):
            values = []
        if values and all(math.isfinite(v) and v >= 0 for v in values) and sum(values) > 0:
            total = sum(values)
            return {lbl: v / total for lbl, v in zip(LABELS, values)}, False
    return {lbl: float(lbl == label) for lbl in LABELS}, True


def parse_record(obj: object) -> tuple[str, dict, bool]:
    """``(id, teacher dict for Pair.teacher, probs were missing)`` or :class:`AnnotationError`."""
    if not isinstance(obj, dict):
        raise AnnotationError("not an object")
    if isinstance(obj.get("teacher"), dict):  # relevance annotate's nested record
        inner = obj["teacher"]
        name = "/".join(str(inner[k]) for k in ("name", "version") if inner.get(k))
        obj = {**inner, "id": obj.get("id"), "teacher": name or None,
               "failed": obj.get("status") == "failed" or inner.get("failed")}
    if obj.get("id") in (None, ""):
        raise AnnotationError("no id")
    if obj.get("error") or obj.get("failed"):
        raise AnnotationError("teacher failure")
    label = obj.get("label")
    if label not in LABELS:
        raise AnnotationError("no label" if label is None else "unknown label")
    probs, one_hot = _probs(obj, label)
    teacher = {
        "label": label,
        "probs": probs,
        "reasoning": str(obj.get("reasoning") or ""),
        "teacher": obj.get("teacher"),
        "prompt_version": obj.get("prompt_version"),
    }
    return str(obj["id"]), teacher, one_hot


def read_annotations(path: str | Path) -> tuple[dict[str, dict], AnnotationStats]:
    """Usable annotations by pair id, and counts of what was skipped and why."""
    stats = AnnotationStats()
    by_id: dict[str, dict] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            stats.records += 1
            try:
                pair_id, teacher, one_hot = parse_record(json.loads(line))
            except json.JSONDecodeError:
                stats.failed["not JSON"] += 1
                continue
            except AnnotationError as err:
                stats.failed[str(err)] += 1
                continue
            stats.duplicates += pair_id in by_id
            stats.one_hot_probs += one_hot
            by_id[pair_id] = teacher
    stats.usable = len(by_id)
    stats.teachers = Counter(str(t["teacher"]) for t in by_id.values())
    return by_id, stats


def attach_annotations(pairs: Sequence[Pair], annotations: Mapping[str, dict], stats: AnnotationStats) -> list[Pair]:
    """Copies of the annotated ``pairs`` with ``Pair.teacher`` set; the join counts go into ``stats``."""
    ids = {p.id for p in pairs}
    out = [replace(p, teacher=annotations[p.id]) for p in pairs if p.id in annotations]
    stats.matched = len(out)
    stats.unannotated_pairs = len(pairs) - len(out)
    stats.unknown_ids = sum(i not in ids for i in annotations)
    return out


def load_annotated_pairs(data: str | Path, split: str, annotations: str | Path) -> tuple[list[Pair], AnnotationStats]:
    """The pairs of ``split`` that have a usable annotation in the file ``annotations``, and the counts."""
    by_id, stats = read_annotations(annotations)
    pairs = attach_annotations(load_pairs(data, split), by_id, stats)
    failed = sum(stats.failed.values())
    log.info("annotations %s: %d records, %d usable, %d failed %s, %d duplicates; %d of %d %s pairs annotated, "
             "%d annotation ids not in the split", annotations, stats.records, stats.usable, failed,
             dict(stats.failed), stats.duplicates, stats.matched, stats.matched + stats.unannotated_pairs, split,
             stats.unknown_ids)
    if not pairs:
        raise ValueError(f"{annotations}: no usable annotation matches a pair of split {split!r} in {data} "
                         f"({stats.records} records, {failed} failed): annotate that split first")
    return pairs, stats


def teacher_metrics(pairs: Sequence[Pair], class_ratings: Sequence[float] = DEFAULT_RATINGS, by: str = "label") -> dict:
    """Report metrics of the teacher's annotations against the pairs' human labels (e.g. on ``test``).

    ``by="label"`` scores the teacher's parsed label (one-hot; how a generating teacher decides),
    ``by="probs"`` its label probabilities (argmax for the class, expectation for ranking and RMSE).
    """
    if by not in {"label", "probs"}:
        raise ValueError("by must be 'label' or 'probs'")
    rated = [p for p in pairs if p.teacher is not None and p.label is not None]
    if not rated:
        raise ValueError("no pair has both a teacher annotation and a human label")
    if by == "label":
        probs = np.eye(len(LABELS))[[LABELS.index(p.teacher["label"]) for p in rated]]
    else:
        probs = np.array([[p.teacher["probs"][lbl] for lbl in LABELS] for p in rated])
    ratings = [p.rating for p in rated]
    return evaluate(probs, [p.label for p in rated], [p.query for p in rated],
                    ratings if all(r is not None for r in ratings) else None, class_ratings=class_ratings)


# --- synthetic annotations for fixture data (tests and development only) -------------------------


def _rule(query: str, title: str, taxonomy: Mapping[str, Sequence[str]]) -> tuple[str, str, str] | None:
    """``(label, query-side phrase, service-side phrase)`` from a department -> product-types taxonomy."""
    dept_of = {item: dept for dept, items in taxonomy.items() for item in items}
    q = next((w for w in query.lower().split() if w in dept_of), None)
    s = next((w for w in title.lower().split() if w in dept_of), None)
    if q is None or s is None:
        return None
    label = "exact" if q == s else "partial" if dept_of[q] == dept_of[s] else "irrelevant"
    return label, f"{q} for the {dept_of[q]}", f"{s} for the {dept_of[s]}"


def synthetic_annotations(
    pairs: Iterable[Pair],
    taxonomy: Mapping[str, Sequence[str]] | None = None,
    noise: float = 0.15,
    failure_rate: float = 0.03,
    seed: int = 0,
    teacher: str = SYNTHETIC_TEACHER,
) -> list[dict]:
    """Annotation records for fixture pairs: the rule's label, flipped with probability ``noise``.

    With a ``taxonomy`` (department -> product types, as the test fixtures define) the label and
    the reasoning come from the product types named in query and title; otherwise from the pair's
    own human label, with a reasoning that restates query and title. Records have the layout of
    ``relevance annotate``; a share ``failure_rate`` of them are failures, to exercise the skipping.
    """
    rng = random.Random(seed)
    name, _, version = teacher.partition("/")
    meta = {"name": name, "version": version, "prompt_version": "synthetic", "attempts": 1}
    records = []
    for pair in pairs:
        if rng.random() < failure_rate:
            records.append({"id": pair.id, "status": "failed", "teacher": {"error": "unparseable output", **meta}})
            continue
        found = _rule(pair.query, pair.service["title"], taxonomy) if taxonomy else None
        if found:
            label, query_side, service_side = found
        else:
            label, query_side, service_side = pair.label or "partial", pair.query, pair.service["title"]
        if rng.random() < noise:
            label = rng.choice([lbl for lbl in LABELS if lbl != label])
        top = rng.uniform(0.55, 0.95)
        rest = [rng.random() + 1e-3 for _ in LABELS[1:]]
        others = iter([(1 - top) * r / sum(rest) for r in rest])
        probs = {lbl: round(top if lbl == label else next(others), 4) for lbl in LABELS}
        records.append({"id": pair.id, "status": "ok", "teacher": {
            "label": label, "probs": probs, "reasoning": f"{query_side} ; {service_side}", **meta}})
    return records


def write_annotations(records: Iterable[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
