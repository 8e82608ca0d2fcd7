"""Reward-scored sampling: ``k`` sampled outputs per labelled pair, each scored on every reward dimension.

:func:`sample_and_score` samples from the current teacher and scores each output with
:mod:`~teacher.chains.reward`; ``relevance teacher reward`` (:func:`run_reward_sampling`) writes
them as JSONL (ids, outputs, rewards; no pair text), the input of DPO (:mod:`teacher.steps.dpo`).
:func:`rescore` scores stored samples again with the current reward, so a reward change needs no
new sampling.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relevance.data import Pair, load_pairs
from teacher.backends.base import TeacherBackend
from teacher.chains.reward import RewardWeights, mean_rewards, score_output
from teacher.sampling import sample_pairs
from teacher.settings import GenerateBase, check_label_split

log = logging.getLogger(__name__)


@dataclass
class RewardSampleConfig(GenerateBase):
    """Sample outputs of a teacher on labelled pairs and score each on every reward dimension."""

    out: str = field(default="runs/teacher/samples.jsonl", metadata={"help": "scored samples (JSONL) to write"})
    split: str = field(default="teacher_train", metadata={"help": "labelled split to sample on"})
    n_pairs: int = field(default=500, metadata={"help": "pairs to sample (class-balanced)"})
    samples_per_pair: int = field(default=4, metadata={"help": "sampled outputs per pair"})
    weights: RewardWeights = field(default_factory=RewardWeights,
                                   metadata={"help": "reward weights", "cli_prefix": ""})  # --label-scoring, ...
    max_chars: int = field(default=400, metadata={"help": "format dimension: longest chain without penalty"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.weights, dict):
            self.weights = RewardWeights(**self.weights)
        check_label_split(self.split, "reward sampling for DPO")
        if self.samples_per_pair < 2:
            raise ValueError("samples_per_pair must be >= 2 to form chosen/rejected pairs")


def sample_and_score(backend: TeacherBackend, pairs: Sequence[Pair], k: int, weights: RewardWeights | None = None,
                     max_chars: int = 400) -> list[dict]:
    """Per pair: ``{"id", "label", "samples": [{"text", "reward": {"total", <dimension>: ...}}]}``."""
    outputs = backend.complete(pairs, sample=True, n=k, want_probs=False)
    records = []
    for pair, completions in zip(pairs, outputs):
        samples = [{"text": c.text, "reward": score_output(c.text, pair, weights, max_chars).to_json()}
                   for c in completions]
        records.append({"id": pair.id, "label": pair.label, "samples": samples})
    return records


def rescore(records: Sequence[dict], pairs: Sequence[Pair], weights: RewardWeights | None = None,
            max_chars: int = 400) -> list[dict]:
    """The same samples scored again with the current reward (a reward change needs no new sampling)."""
    by_id = {p.id: p for p in pairs}
    return [{**r, "samples": [{**s, "reward": score_output(s["text"], by_id[r["id"]], weights, max_chars).to_json()}
                              for s in r["samples"]]} for r in records if r["id"] in by_id]


def reward_summary(records: Sequence[dict]) -> dict:
    """Mean of each reward dimension over all samples, and how many samples there were."""
    rewards = [s["reward"] for r in records for s in r["samples"]]
    return {**mean_rewards(rewards), "samples": len(rewards)}


def write_samples(records: Sequence[dict], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def read_samples(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def run_reward_sampling(cfg: RewardSampleConfig, backend: TeacherBackend | None = None) -> tuple[list[dict], dict]:
    """``relevance teacher reward``: sample, score, write ``cfg.out``; returns records and the summary."""
    pairs = sample_pairs(load_pairs(cfg.data, cfg.split), cfg.n_pairs, cfg.seed, balanced=True)
    if backend is None:
        from teacher.backends.local import LocalBackend

        backend = LocalBackend.from_teacher(cfg.teacher, cfg.template(),
                                            cfg.generation, dtype=cfg.dtype, threads=cfg.threads)
    records = sample_and_score(backend, pairs, cfg.samples_per_pair, cfg.weights, cfg.max_chars)
    write_samples(records, cfg.out)
    summary = reward_summary(records)
    log.info("reward over %d samples: %s", summary.get("samples", 0), summary)
    return records, summary
