"""Read teacher annotation files: the usable annotation of each pair id, and counts of what was not usable.

Two record shapes are read: the records of :mod:`relevance.annotations.schema` (nested ``teacher``
block, with or without ``schema_version``), and the flat form
``{"id", "label", "probs", "reasoning", "teacher": "name/version", "prompt_version"}``.

A record is *failed* and skipped (counted by reason, never given a label) when the line is not
JSON, has no id, has ``status`` ``failed`` or carries ``"error"`` / ``"failed"``, or its label is
missing or not one of :data:`~relevance.labels.LABELS`. Probabilities are re-normalised over the
labels; a record without usable ``probs`` falls back to a one-hot distribution on its label
(counted). When an id appears twice (a resumed run), the last record wins. A record of a newer
``schema_version`` is not guessed at: reading stops with an error.

:func:`read_records` is the raw, strict view a resuming writer needs (every record as written).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from relevance.annotations.schema import check_schema_version
from relevance.labels import LABELS


class AnnotationError(ValueError):
    """One annotation record is unusable; the message is the reason it is counted under."""


@dataclass
class AnnotationStats:
    """What reading (and joining onto pairs: ``matched`` and after) an annotation file found; logged,
    and kept in the run's metadata."""

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


def teacher_block(record: dict) -> dict:
    """The fields a teacher wrote in a record: its nested ``teacher`` block, or a flat record itself."""
    return record["teacher"] if isinstance(record.get("teacher"), dict) else record


def parse_record(obj: object) -> tuple[str, dict, bool]:
    """``(id, teacher dict for Pair.teacher, probs were missing)`` or :class:`AnnotationError`."""
    if not isinstance(obj, dict):
        raise AnnotationError("not an object")
    check_schema_version(obj.get("schema_version"))
    inner = teacher_block(obj)
    if inner is not obj:  # the schema's nested record
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
        for n, line in enumerate(fh, 1):
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
            except ValueError as err:  # a schema version this reader does not know
                raise ValueError(f"{path}:{n}: {err}") from None
            stats.duplicates += pair_id in by_id
            stats.one_hot_probs += one_hot
            by_id[pair_id] = teacher
    stats.usable = len(by_id)
    stats.teachers = Counter(str(t["teacher"]) for t in by_id.values())
    return by_id, stats


def complete_length(data: bytes) -> int:
    """Bytes of ``data`` up to its last newline: a final line without one is a write cut by a kill."""
    return data.rfind(b"\n") + 1


def read_records(path: str | Path) -> list[dict]:
    """Every record of an annotation file as written (``[]`` if there is no file). A final line without
    newline (a kill mid-write) is ignored; any other line that is not JSON is an error naming it."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records = []
    for n, line in enumerate(data[: complete_length(data)].decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise ValueError(f"{path}:{n}: not a JSON record; fix or remove the line and resume") from None
    return records


def finished_ids(path: str | Path) -> set[str]:
    """Ids with a record in ``path`` (``ok`` and ``failed``): what a resumed run skips."""
    return {str(r["id"]) for r in read_records(path)}
