"""Seed-chain source (a): the teacher's own chains, by rejection sampling and rationalisation.

The teacher (or a stronger writer LLM, ``writer="llm:<name>"``) samples ``k`` chains per labelled
pair and keeps the best-rewarded one whose label matches the human label; where none does, it
generates once more with the human label given as a hint and keeps that chain if it ends with the
hinted label. The sources and their tags are described in :mod:`teacher.chains.seeds`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from relevance.data import Pair
from teacher.backends.base import TeacherBackend
from teacher.chains.prompts import parse_output
from teacher.chains.reward import score_output
from teacher.chains.seeds import SeedChain, seed_from_output, source_tags
from teacher.settings import GenerateBase, check_label_split

log = logging.getLogger(__name__)


@dataclass
class BootstrapConfig(GenerateBase):
    """Seed-chain source (a): the teacher's own chains by rejection sampling and rationalisation."""

    out: str = field(default="runs/teacher/seeds-bootstrap.jsonl", metadata={"help": "seeds JSONL to write"})
    split: str = field(default="teacher_train", metadata={"help": "human-labelled split"})
    n_pairs: int = field(default=3000, metadata={"help": "pairs to bootstrap (class-balanced draw)"})
    samples_per_pair: int = field(default=4, metadata={"help": "sampled chains per pair for rejection sampling"})
    rationalise: bool = field(default=True, metadata={"help": "retry unmatched pairs with the human label as hint"})
    writer: str = field(default="teacher", metadata={
        "help": "who writes the chains, for their source tag: 'teacher' (source a) or 'llm:<name>' (a stronger LLM)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_label_split(self.split, "bootstrapping")


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
            seeds.append(seed_from_output(pair, best[1], rejection))
        else:
            missing.append(pair)
    dropped = len(missing)
    if rationalise and missing:
        hinted = backend.complete(missing, sample=False, n=1, hints=[p.label for p in missing], want_probs=False)
        for pair, (c,) in zip(missing, hinted):
            parsed = parse_output(c.text)
            if parsed.ok and parsed.label == pair.label:
                seeds.append(seed_from_output(pair, parsed, rationalised))
                dropped -= 1
    stats = {"pairs": len(pairs), "dropped": dropped, **Counter(s.source for s in seeds)}
    log.info("bootstrap seeds: %s", stats)
    return seeds, stats
