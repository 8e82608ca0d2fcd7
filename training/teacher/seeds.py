"""Seed reasoning chains for SFT, from one of two documented sources.

* **(b) program** (:func:`program_seeds`): the attribute-analysis program of
  :mod:`~training.teacher.attributes` writes its findings and ends with the human label.
  Source tag ``program:attributes-v1``.
* **(a) bootstrap** (:func:`bootstrap_seeds`): the teacher itself samples ``k`` chains per pair
  and keeps the best-rewarded one whose label matches the human label (rejection sampling,
  tag ``teacher:rejection``); where none does, it generates once more with the human label
  given as a hint in the prompt and keeps that chain if it ends with the hinted label
  (rationalisation, tag ``teacher:rationalised``; the hint is not part of the SFT prompt).

* **(a') a stronger writer LLM** (the paper's general-purpose LLM; here Qwen2.5-Coder-1.5B from PyPI):
  the same bootstrap run with ``--teacher`` pointing at that model and ``writer`` naming it, so its
  chains are tagged ``llm:<name>:rejection`` / ``llm:<name>:rationalised``, never ``teacher:``.

Seeds are training data. A seeds file (``id``, ``chain``, ``source``, ``implied_label``) holds
no copied pair text besides what the chain cites, and every record names its source so
program-made text is never mistaken for teacher output.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from relevance.data import Pair
from training.teacher.attributes import SOURCE as PROGRAM_SOURCE
from training.teacher.attributes import BrandLexicon, implied_label, program_chain
from training.teacher.generation import TeacherBackend
from training.teacher.prompts import ParsedChain, parse_output
from training.teacher.reward import score_output

log = logging.getLogger(__name__)
def source_tags(writer: str = "teacher") -> tuple[str, str]:
    """``(rejection, rationalised)`` source tags of chains written by ``writer`` (the teacher or ``llm:<name>``)."""
    return f"{writer}:rejection", f"{writer}:rationalised"


REJECTION, RATIONALISED = source_tags()


@dataclass
class SeedChain:
    id: str
    chain: str
    source: str
    label: str  # the human label the chain ends with
    implied_label: str | None  # what the chain's findings point to

    @property
    def consistent(self) -> bool:
        return self.implied_label == self.label


def program_seeds(pairs: Sequence[Pair], lexicon: BrandLexicon | None = None,
                  text_fields: tuple[str, ...] = ("title",)) -> list[SeedChain]:
    """Source (b): one program-made chain per labelled pair."""
    out = []
    for pair in pairs:
        chain, analysis = program_chain(pair, pair.label, lexicon, text_fields)
        out.append(SeedChain(pair.id, chain, PROGRAM_SOURCE, pair.label, analysis.implied_label))
    return out


def clean_chain(parsed: ParsedChain) -> str:
    """The chain lines of a parsed output (anything else dropped), ending with its label."""
    return parsed.reasoning + f"\nLabel: {parsed.label}"


def _seed_from(pair: Pair, parsed: ParsedChain, source: str) -> SeedChain:
    implied = implied_label({k: f.verdict for k, f in parsed.findings.items()})
    return SeedChain(pair.id, clean_chain(parsed), source, pair.label, implied)


def bootstrap_seeds(backend: TeacherBackend, pairs: Sequence[Pair], k: int = 4,
                    rationalise: bool = True, writer: str = "teacher") -> tuple[list[SeedChain], dict]:
    """Source (a): rejection sampling, then rationalisation with the human label as a hint.

    ``writer`` tags the chains' source (``teacher``, or ``llm:<name>`` for a stronger seed writer).
    """
    rejection, rationalised = source_tags(writer)
    seeds: list[SeedChain] = []
    missing: list[Pair] = []
    outputs = backend.complete(pairs, sample=True, n=k, want_probs=False) if k else [[] for _ in pairs]
    for pair, completions in zip(pairs, outputs):
        best = None
        for c in completions:
            parsed = parse_output(c.text)
            if parsed.ok and parsed.label == pair.label:
                score = score_output(c.text, pair, parsed=parsed).total
                if best is None or score > best[0]:
                    best = (score, parsed)
        if best:
            seeds.append(_seed_from(pair, best[1], rejection))
        else:
            missing.append(pair)
    dropped = len(missing)
    if rationalise and missing:
        hinted = backend.complete(missing, sample=False, n=1, hints=[p.label for p in missing], want_probs=False)
        for pair, (c,) in zip(missing, hinted):
            parsed = parse_output(c.text)
            if parsed.ok and parsed.label == pair.label:
                seeds.append(_seed_from(pair, parsed, rationalised))
                dropped -= 1
    stats = {"pairs": len(pairs), "dropped": dropped, **Counter(s.source for s in seeds)}
    log.info("bootstrap seeds: %s", stats)
    return seeds, stats


def write_seeds(seeds: Sequence[SeedChain], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for seed in seeds:
            fh.write(json.dumps(asdict(seed), ensure_ascii=False) + "\n")


def read_seeds(path: str | Path) -> list[SeedChain]:
    with open(path, encoding="utf-8") as fh:
        return [SeedChain(**json.loads(line)) for line in fh if line.strip()]
