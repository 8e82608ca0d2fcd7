"""Seed reasoning chains for SFT, from one of two documented sources.

* **(b) program** (:func:`program_seeds`): the attribute-analysis program of
  :mod:`~teacher.chains.attributes` writes its findings and ends with the human label.
  Source tag ``program:attributes-v1``.
* **(a) bootstrap** (:func:`~teacher.steps.bootstrap.bootstrap_seeds`): the teacher itself samples
  ``k`` chains per pair and keeps the best-rewarded one whose label matches the human label
  (rejection sampling, tag ``teacher:rejection``); where none does, it generates once more with the
  human label given as a hint in the prompt and keeps that chain if it ends with the hinted label
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from relevance.data import Pair
from teacher.chains.attributes import SOURCE as PROGRAM_SOURCE
from teacher.chains.attributes import BrandLexicon, implied_label, program_chain
from teacher.chains.prompts import ParsedChain


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


def seed_from_output(pair: Pair, parsed: ParsedChain, source: str) -> SeedChain:
    """A generated chain kept as a seed: its clean lines and what its own findings imply."""
    implied = implied_label({k: f.verdict for k, f in parsed.findings.items()})
    return SeedChain(pair.id, clean_chain(parsed), source, pair.label, implied)


def write_seeds(seeds: Sequence[SeedChain], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for seed in seeds:
            fh.write(json.dumps(asdict(seed), ensure_ascii=False) + "\n")


def read_seeds(path: str | Path) -> list[SeedChain]:
    with open(path, encoding="utf-8") as fh:
        return [SeedChain(**json.loads(line)) for line in fh if line.strip()]
