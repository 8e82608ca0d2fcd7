"""An annotation file as the teacher: what a teacher already said about each pair, replayed.

Measuring a teacher on the split it annotated (its macro-F1 on ``pool`` against pool's human labels,
say) needs no second generation, which for an LLM on CPU is hours: each record becomes the completion
the teacher gave, its chain (``reasoning`` and the ``Label:`` line) with its label probabilities, so
``relevance teacher eval --annotations FILE`` measures it with exactly the metrics of a live run. A
failed record replays as the failure it was (its output and error), so it counts as a wrong answer
there too. Pairs the file has no record of are not the teacher's answers; the caller leaves them out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from relevance.annotations.reader import AnnotationError, parse_record, read_records, teacher_block
from relevance.data import Pair
from teacher.backends.base import Completion


def replay(record: dict) -> Completion:
    """The completion one record stands for."""
    try:
        _, teacher, one_hot = parse_record(record)
    except AnnotationError as err:  # a failed record: the output it gave up on, never a label
        block = teacher_block(record)
        return Completion(str(block.get("output") or ""), None, str(block.get("error") or err))
    chain = "\n".join(part for part in (teacher["reasoning"], f"Label: {teacher['label']}") if part)
    return Completion(chain, None if one_hot else teacher["probs"])


class RecordedBackend:
    """Completions from an annotation file, by pair id; deterministic (``sample``/``hints`` change nothing)."""

    def __init__(self, path: str | Path) -> None:
        records = read_records(path)
        if not records:
            raise ValueError(f"{path}: no annotation records")
        self.records = {str(r["id"]): r for r in records}  # a resumed file's last record of an id wins
        blocks = [teacher_block(r) for r in self.records.values()]
        self.name, self.version = Counter((str(b.get("name") or path), str(b.get("version") or "")) for b in blocks
                                          ).most_common(1)[0][0]
        # nothing is prompted here: the answers carry the version of the prompt that made them
        self.prompt_version = Counter(str(b.get("prompt_version") or "") for b in blocks).most_common(1)[0][0]

    def __contains__(self, pair_id: str) -> bool:
        return pair_id in self.records

    def complete(self, pairs: Sequence[Pair], *, sample: bool = False, n: int = 1,
                 hints: Sequence[str | None] | None = None) -> list[list[Completion]]:
        missing = [p.id for p in pairs if p.id not in self.records]
        if missing:
            raise KeyError(f"no annotation record for {len(missing)} pairs (first: {missing[0]})")
        return [[replay(self.records[p.id])] * n for p in pairs]
