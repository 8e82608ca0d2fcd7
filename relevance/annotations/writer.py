"""Write teacher annotation files: a whole file at once, or appended to batch by batch, resumably.

Every record goes through :func:`~relevance.annotations.schema.validate_record` first, so only
records of the current schema (carrying its ``schema_version``) are ever written.

* :func:`write_annotations` writes a whole file (overwritten), e.g. the oracle's or fixture data.
* :class:`AnnotationAppender` appends to a file that a killed run may have left behind: a last
  line cut mid-write is truncated away before appending, :attr:`~AnnotationAppender.finished`
  holds the ids already recorded (``ok`` and ``failed``) so a resumed run skips them, and each
  batch is flushed and fsynced, so what a batch wrote survives a kill of the next one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from relevance.annotations.reader import complete_length, finished_ids
from relevance.annotations.schema import AnnotatedRecord, FailedRecord, record_json, validate_record

log = logging.getLogger(__name__)

RecordLike = AnnotatedRecord | FailedRecord | Mapping[str, Any]


def record_line(record: RecordLike) -> str:
    """One line of an annotation file: the validated record as JSON, newline-terminated."""
    return json.dumps(record_json(validate_record(record)), ensure_ascii=False) + "\n"


def write_annotations(records: Iterable[RecordLike], path: str | Path) -> Path:
    """Write ``records`` to ``path`` (overwritten, parent folders made); returns the path. Every record
    is validated before the file is opened, so an invalid one leaves the old file as it was."""
    lines = [record_line(r) for r in records]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(lines)
    return path


def repair_unfinished_line(path: str | Path) -> None:
    """Cut a final line without newline (a kill mid-write) off ``path``, so appending continues cleanly."""
    path = Path(path)
    if not path.exists():
        return
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        keep = complete_length(fh.read())
        if keep != size:
            log.warning("%s: dropping an unfinished last line (%d bytes)", path, size - keep)
            fh.truncate(keep)


class AnnotationAppender:
    """``with AnnotationAppender(path) as out:`` skip ``out.finished``, then ``out.append(batch)`` per batch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.finished: set[str] = set()
        self._fh: IO[str] | None = None

    def __enter__(self) -> AnnotationAppender:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_unfinished_line(self.path)
        self.finished = finished_ids(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")
        return self

    def append(self, records: Iterable[RecordLike]) -> None:
        """Write one batch and make it durable (flush + fsync) before returning."""
        assert self._fh is not None, "use AnnotationAppender as a context manager"
        batch = [validate_record(r) for r in records]  # the whole batch is valid before any of it is written
        self._fh.write("".join(record_line(r) for r in batch))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.finished.update(r.id for r in batch)

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
