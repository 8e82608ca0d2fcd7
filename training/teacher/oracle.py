"""An oracle teacher: the human labels of a split, each with a reasoning chain written by the attribute program.

It answers "does reasoning help when the labels are right?" without the cost of a strong LLM: the
label is the human one (macro-F1 1.0 against the human labels of the pairs it annotates), and the
reasoning is :func:`~training.teacher.attributes.program_chain`'s findings on the pair. The chain
is **program-made text**: every record names it (``name`` ``oracle:program:attributes-v1``), so it
is never read as a model's output.

Records have the shape of ``relevance annotate``'s (``training.teacher.annotate``), so the student
side reads them unchanged. ``label_line`` decides whether the chain ends with its ``Label:`` line:

* ``drop`` (default, the same form as the LLM teacher's records, whose stored reasoning never
  carries the label line): the augmented view must learn from the findings alone;
* ``keep``: the augmented view reads the answer; the upper bound of what the second view can add.

``implied_label`` records what the findings point to on their own
(:func:`~training.teacher.attributes.implied_label`); where it differs from the label, the chain is
not consistent with it, and the annotation summary counts how often.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from relevance.data import Pair
from training.teacher.attributes import SOURCE, BrandLexicon, program_chain
from training.teacher.prompts import PROMPT_VERSION

log = logging.getLogger(__name__)

ORACLE_NAME = f"oracle:{SOURCE}"
LABEL_LINES = ("drop", "keep")


def oracle_record(pair: Pair, lexicon: BrandLexicon, label_line: str = "drop",
                  text_fields: tuple[str, ...] = ("title",)) -> dict:
    """One annotation record: ``pair``'s human label, the program's chain, one-hot probabilities."""
    if label_line not in LABEL_LINES:
        raise ValueError(f"label_line must be one of {LABEL_LINES}, got {label_line!r}")
    if pair.label is None:
        raise ValueError(f"pair {pair.id} has no human label: the oracle annotates labelled pairs only")
    chain, analysis = program_chain(pair, pair.label, lexicon, text_fields)
    if label_line == "drop":
        chain = "\n".join(chain.splitlines()[:-1])  # format_chain's last line is "Label: <label>"
    return {"id": pair.id, "status": "ok", "teacher": {
        "label": pair.label, "probs": None, "reasoning": chain, "name": ORACLE_NAME,
        "version": f"human-labels+{SOURCE}/label-line-{label_line}", "prompt_version": PROMPT_VERSION,
        "attempts": 0, "implied_label": analysis.implied_label}}


def write_oracle(pairs: Sequence[Pair], out: str | Path, label_line: str = "drop",
                 text_fields: tuple[str, ...] = ("title",)) -> dict:
    """Write one oracle record per labelled pair of ``pairs`` to ``out`` (overwritten); return counts.

    The brand lexicon is learnt from ``pairs``' titles, as the SFT seeds' is.
    """
    pairs = [p for p in pairs if p.label is not None]
    lexicon = BrandLexicon.from_titles(p.service.get("title", "") for p in pairs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    consistent = Counter()
    with open(out, "w", encoding="utf-8") as fh:
        for pair in pairs:
            record = oracle_record(pair, lexicon, label_line, text_fields)
            implied = record["teacher"]["implied_label"]
            consistent["consistent" if implied == pair.label else "no_implied" if implied is None
                       else "inconsistent"] += 1
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary = {"pairs": len(pairs), "labels": dict(Counter(p.label for p in pairs)), **consistent}
    log.info("oracle annotations: %s", summary)
    return summary
