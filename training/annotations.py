"""Teacher annotations on the training side: join them onto pairs by id, score the teacher, and make
synthetic ones for fixture data.

Annotation files are read with :mod:`relevance.annotations.reader` (the record contract is
:mod:`relevance.annotations.schema`): failed and unusable records are skipped and counted by
reason, the last record of an id wins, and missing probabilities fall back to one-hot.
:func:`load_annotated_pairs` joins the usable ones onto a split's pairs (``Pair.teacher``).

:func:`synthetic_annotations` writes such records for fixture data (tests, development): label from
the fixture's rule with some noise, peaked probabilities, a short reasoning that names product
types and departments. It is test data, never a teacher's output.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from relevance.annotations.reader import AnnotationStats, read_annotations
from relevance.annotations.schema import (
    AnnotatedRecord,
    FailedRecord,
    TeacherFailure,
    TeacherLabel,
    record_json,
)
from relevance.data import Pair, load_pairs
from relevance.labels import DEFAULT_RATINGS, LABELS
from relevance.metrics import evaluate

log = logging.getLogger(__name__)

SYNTHETIC_TEACHER = "synthetic-fixture/0"


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
    own human label, with a reasoning that restates query and title. Records are the JSON objects of
    :mod:`relevance.annotations.schema`; a share ``failure_rate`` of them are failures, to exercise the skipping.
    """
    rng = random.Random(seed)
    name, _, version = teacher.partition("/")
    meta = {"name": name, "version": version, "prompt_version": "synthetic", "attempts": 1}
    records = []
    for pair in pairs:
        if rng.random() < failure_rate:
            records.append(record_json(FailedRecord(id=pair.id, teacher=TeacherFailure(
                error="unparseable output", **meta))))
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
        records.append(record_json(AnnotatedRecord(id=pair.id, teacher=TeacherLabel(
            label=label, probs=probs, reasoning=f"{query_side} ; {service_side}", **meta))))
    return records
