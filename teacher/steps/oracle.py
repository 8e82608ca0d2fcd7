"""An oracle teacher: the human labels of a split, each with a reasoning chain written by the attribute program.

It answers "does reasoning help when the labels are right?" without the cost of a strong LLM: the
label is the human one (macro-F1 1.0 against the human labels of the pairs it annotates), and the
reasoning is :func:`~teacher.chains.attributes.program_chain`'s findings on the pair. The chain
is **program-made text**: every record names it (``name`` ``oracle:program:attributes-v1``), so it
is never read as a model's output.

Records are those of :mod:`relevance.annotations.schema`, as ``relevance annotate``'s
(:mod:`teacher.steps.annotate`), so the student side reads them unchanged. ``label_line`` decides
whether the chain ends with its ``Label:`` line:

* ``drop`` (default, the same form as the LLM teacher's records, whose stored reasoning never
  carries the label line): the augmented view must learn from the findings alone;
* ``keep``: the augmented view reads the answer; the upper bound of what the second view can add.

``implied_label`` records what the findings point to on their own
(:func:`~teacher.chains.attributes.implied_label`); where it differs from the label, the chain is
not consistent with it, and the annotation summary counts how often.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relevance.annotations.schema import AnnotatedRecord, TeacherLabel
from relevance.annotations.writer import write_annotations
from relevance.config import DataConfig
from relevance.data import Pair
from teacher.chains.attributes import SOURCE, BrandLexicon, program_chain
from teacher.chains.prompts import PROMPT_VERSION

log = logging.getLogger(__name__)

ORACLE_NAME = f"oracle:{SOURCE}"
LABEL_LINES = ("drop", "keep")


@dataclass
class OracleConfig(DataConfig):
    """``relevance teacher oracle``: which labelled pairs get program-written chains, and where they go."""

    split: str = field(default="teacher_train", metadata={"help": "a human-labelled split to annotate"})
    limit: int = field(default=5040, metadata={
        "help": "the first N pairs in sha1(id) order, a seeded-by-hash sample (0 = all); 5040 matches the annotated "
                "pool's budget"})
    label_line: str = field(default="drop", metadata={
        "help": "drop (the chain without its 'Label:' line, as the LLM teacher's records) | keep (the augmented "
                "view reads the answer)"})
    out: str = field(default="artifacts/annotations/oracle-teacher_train-5040.jsonl",
                     metadata={"help": "annotation JSONL (overwritten)"})
    text_fields: tuple[str, ...] = field(default=("title",), metadata={"help": "service fields the chains cite, in order"})

    def __post_init__(self) -> None:
        self.text_fields = tuple(self.text_fields)


def oracle_record(pair: Pair, lexicon: BrandLexicon, label_line: str = "drop",
                  text_fields: tuple[str, ...] = ("title",)) -> AnnotatedRecord:
    """One annotation record: ``pair``'s human label, the program's chain, no probabilities (one-hot when read)."""
    if label_line not in LABEL_LINES:
        raise ValueError(f"label_line must be one of {LABEL_LINES}, got {label_line!r}")
    if pair.label is None:
        raise ValueError(f"pair {pair.id} has no human label: the oracle annotates labelled pairs only")
    chain, analysis = program_chain(pair, pair.label, lexicon, text_fields)
    if label_line == "drop":
        chain = "\n".join(chain.splitlines()[:-1])  # format_chain's last line is "Label: <label>"
    return AnnotatedRecord(id=pair.id, teacher=TeacherLabel(
        label=pair.label, probs=None, reasoning=chain, name=ORACLE_NAME,
        version=f"human-labels+{SOURCE}/label-line-{label_line}", prompt_version=PROMPT_VERSION,
        attempts=0, implied_label=analysis.implied_label))


def write_oracle(pairs: Sequence[Pair], out: str | Path, label_line: str = "drop",
                 text_fields: tuple[str, ...] = ("title",)) -> dict:
    """Write one oracle record per labelled pair of ``pairs`` to ``out`` (overwritten); return counts.

    The brand lexicon is learnt from ``pairs``' titles, as the SFT seeds' is.
    """
    pairs = [p for p in pairs if p.label is not None]
    lexicon = BrandLexicon.from_titles(p.service.get("title", "") for p in pairs)
    records = [oracle_record(pair, lexicon, label_line, text_fields) for pair in pairs]
    consistent = Counter("consistent" if r.teacher.implied_label == r.teacher.label else
                         "no_implied" if r.teacher.implied_label is None else "inconsistent" for r in records)
    write_annotations(records, out)
    summary = {"pairs": len(pairs), "labels": dict(Counter(p.label for p in pairs)), **consistent}
    log.info("oracle annotations: %s", summary)
    return summary
