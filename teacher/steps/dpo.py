"""DPO on reward-scored samples.

1. :func:`~teacher.steps.reward_sampling.sample_and_score` samples ``k`` outputs per labelled pair
   from the current teacher and scores each on every reward dimension (:mod:`~teacher.chains.reward`);
   ``relevance teacher reward`` writes them as JSONL (ids, outputs, rewards; no pair text).
2. :func:`preference_pairs` keeps, per pair, the best- and worst-rewarded distinct outputs as
   chosen/rejected when the chosen one parses and the gap is at least ``min_margin``
   (``selection="margin"``); :func:`label_contrast_pairs` (``selection="label_contrast"``) keeps
   only pairs whose chosen output has the human label and whose rejected one does not, with the
   same number of pairs per human class. Why: with the margin rule the pairs follow the SFT
   teacher's majority label (it says ``exact`` for ~90% of samples) and DPO collapsed onto one
   class under either label reward (docs/training.md).
3. :func:`train_dpo` runs TRL's ``DPOTrainer`` with a new LoRA adapter on the merged teacher;
   the reference policy is the same model with the adapter disabled. The DPO loss
   (Rafailov et al., 2023) for prompt ``x``, chosen ``y_w``, rejected ``y_l``::

       L = - log sigmoid( beta * [ (log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x)) ] )
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relevance.data import load_pairs
from teacher.settings import TrainBase
from teacher.steps.reward_sampling import (
    RewardSampleConfig,
    read_samples,
    rescore,
    reward_summary,
    run_reward_sampling,
)

log = logging.getLogger(__name__)


@dataclass
class TeacherDPOConfig(TrainBase):
    """DPO on chosen/rejected pairs built from reward-scored samples."""

    out: str = field(default="runs/teacher/dpo", metadata={"help": "output folder (adapter + teacher.json)"})
    samples: str = field(
        default="", metadata={"help": "scored samples .jsonl from `teacher reward` ('' = sample now)"}
    )
    sampling: RewardSampleConfig = field(default_factory=RewardSampleConfig, metadata={
        "help": "reward sampling, when no --samples file is given (its split and label scoring also apply to "
                "--samples)", "cli_prefix": ""})  # the command exposes a few of its fields, under their own names
    min_margin: float = field(default=0.15, metadata={"help": "min reward gap between chosen and rejected"})
    pairs_per_prompt: int = field(default=1, metadata={"help": "preference pairs kept per query-service pair"})
    selection: str = field(default="label_contrast", metadata={
        "help": "label_contrast: chosen has the human label, rejected not, same count per class | margin: best "
                "vs worst reward (follows the teacher's majority label; the first CPU runs used it)"})
    beta: float = field(default=0.1, metadata={"help": "DPO beta (strength of the KL anchor)"})
    max_length: int = field(default=384, metadata={"help": "max tokens of prompt + output"})
    lr: float = field(default=2e-5, metadata={"help": "peak learning rate (LoRA)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.sampling, dict):
            self.sampling = RewardSampleConfig(**self.sampling)
        if self.beta <= 0 or self.pairs_per_prompt < 1:
            raise ValueError("beta must be > 0 and pairs_per_prompt >= 1")
        if self.selection not in {"label_contrast", "margin"}:
            raise ValueError("selection must be 'label_contrast' or 'margin'")


def preference_pairs(records: Sequence[dict], min_margin: float = 0.15, pairs_per_prompt: int = 1) -> list[dict]:
    """``{"id", "chosen", "rejected", "margin"}`` from scored samples (best vs. worst distinct outputs)."""
    out = []
    for record in records:
        distinct: dict[str, dict] = {}
        for s in record["samples"]:
            distinct.setdefault(s["text"], s)
        ranked = sorted(distinct.values(), key=lambda s: -s["reward"]["total"])
        for i in range(min(pairs_per_prompt, len(ranked) // 2)):
            chosen, rejected = ranked[i], ranked[-1 - i]
            margin = chosen["reward"]["total"] - rejected["reward"]["total"]
            if margin < min_margin or chosen["reward"]["format"] <= 0:
                break
            out.append({"id": record["id"], "chosen": chosen["text"], "rejected": rejected["text"],
                        "margin": round(margin, 6)})
    return out


def label_contrast_pairs(records: Sequence[dict], min_margin: float = 0.15, seed: int = 13) -> list[dict]:
    """``{"id", "chosen", "rejected", "margin"}``: best correct-label vs worst wrong-label output per pair,
    then a seeded draw of the same count per human label (the rarest class's count)."""
    by_class: dict[str, list[dict]] = {}
    for record in records:
        right = [s for s in record["samples"] if s["reward"]["label"] >= 1.0 and s["reward"]["format"] > 0]
        wrong = [s for s in record["samples"] if s["reward"]["label"] < 1.0]
        if not right or not wrong:
            continue
        chosen = max(right, key=lambda s: s["reward"]["total"])
        rejected = min(wrong, key=lambda s: s["reward"]["total"])
        margin = chosen["reward"]["total"] - rejected["reward"]["total"]
        if margin >= min_margin:
            by_class.setdefault(record["label"], []).append(
                {"id": record["id"], "chosen": chosen["text"], "rejected": rejected["text"], "margin": round(margin, 6)})
    if not by_class:
        return []
    quota = min(len(v) for v in by_class.values())
    rng = random.Random(seed)
    return [p for label in sorted(by_class) for p in rng.sample(by_class[label], quota)]


def train_dpo(cfg: TeacherDPOConfig):
    """Run DPO on chosen/rejected pairs from ``cfg.samples`` (or sampled now); returns the teacher folder."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from teacher.trainer import finish_step, start_step, trainer_kwargs, trainer_process_state

    if cfg.samples:
        records = rescore(read_samples(cfg.samples), load_pairs(cfg.data, cfg.sampling.split),
                          cfg.sampling.weights, cfg.sampling.max_chars)
    else:
        sampling = cfg.sampling
        sampling.teacher, sampling.data, sampling.out = cfg.teacher, cfg.data, str(Path(cfg.out) / "samples.jsonl")
        records, _ = run_reward_sampling(sampling)
    prefs = (label_contrast_pairs(records, cfg.min_margin, cfg.seed) if cfg.selection == "label_contrast"
             else preference_pairs(records, cfg.min_margin, cfg.pairs_per_prompt))
    if not prefs:
        raise ValueError("no chosen/rejected pairs: every pair's samples scored within min_margin; "
                         "sample more outputs per pair, raise the temperature or lower --min-margin")
    started = start_step(cfg)
    template = cfg.template()
    by_id = {p.id: p for p in load_pairs(cfg.data, cfg.sampling.split)}
    rows = [{"prompt": template.render(started.tokenizer, by_id[r["id"]]), "chosen": r["chosen"],
             "rejected": r["rejected"]} for r in prefs if r["id"] in by_id]
    log.info("DPO: %d preference pairs from %d scored pairs", len(rows), len(records))
    with trainer_process_state():
        args = DPOConfig(**trainer_kwargs(cfg, started.out), beta=cfg.beta, max_length=cfg.max_length,
                         dataset_num_proc=None)
        trainer = DPOTrainer(model=started.model, args=args, train_dataset=Dataset.from_list(rows),
                             processing_class=started.tokenizer, peft_config=cfg.lora.peft_config())
        trainer.train()
        summary = reward_summary(records)
        return finish_step(trainer, started, cfg, "dpo", {
            "preference_pairs": len(rows), "selection": cfg.selection,
            "mean_margin": sum(r["margin"] for r in prefs) / len(prefs),
            "sample_reward": summary, "prompt_version": template.tag})
