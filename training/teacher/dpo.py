"""Reward-scored sampling and DPO.

1. :func:`sample_and_score` samples ``k`` outputs per labelled pair from the current teacher and
   scores each on every reward dimension (:mod:`~training.teacher.reward`); ``relevance teacher
   reward`` writes them as JSONL (ids, outputs, rewards; no pair text).
2. :func:`preference_pairs` keeps, per pair, the best- and worst-rewarded distinct outputs as
   chosen/rejected when the chosen one parses and the gap is at least ``min_margin``
   (``selection="margin"``); :func:`label_contrast_pairs` (``selection="label_contrast"``) keeps
   only pairs whose chosen output has the human label and whose rejected one does not, with the
   same number of pairs per human class. Why: with the margin rule the pairs follow the SFT
   teacher's majority label (it says ``exact`` for ~90% of samples) and DPO collapsed onto one
   class under either label reward (docs/teacher.md).
3. :func:`train_dpo` runs TRL's ``DPOTrainer`` with a new LoRA adapter on the merged teacher;
   the reference policy is the same model with the adapter disabled. The DPO loss
   (Rafailov et al., 2023) for prompt ``x``, chosen ``y_w``, rejected ``y_l``::

       L = - log sigmoid( beta * [ (log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x)) ] )
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from relevance.data import Pair, load_pairs
from training.teacher.config import RewardSampleConfig, RewardWeights, TeacherDPOConfig
from training.teacher.generation import TeacherBackend
from training.teacher.reward import mean_rewards, score_output
from training.teacher.sampling import sample_pairs

log = logging.getLogger(__name__)


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


def run_reward_sampling(cfg: RewardSampleConfig, backend: TeacherBackend | None = None) -> tuple[list[dict], dict]:
    """``relevance teacher reward``: sample, score, write ``cfg.out``; returns records and the summary."""
    pairs = sample_pairs(load_pairs(cfg.data, cfg.split), cfg.n_pairs, cfg.seed, balanced=True)
    if backend is None:
        from training.teacher.generation import LocalBackend

        backend = LocalBackend.from_teacher(cfg.teacher, cfg.template(),
                                            cfg.generation, dtype=cfg.dtype, threads=cfg.threads)
    records = sample_and_score(backend, pairs, cfg.samples_per_pair, cfg.weights, cfg.max_chars)
    write_samples(records, cfg.out)
    summary = reward_summary(records)
    log.info("reward over %d samples: %s", summary.get("samples", 0), summary)
    return records, summary


def train_dpo(cfg: TeacherDPOConfig):
    """Run DPO on chosen/rejected pairs from ``cfg.samples`` (or sampled now); returns the teacher folder."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from training.teacher.trainer_utils import finish_step, start_step, trainer_kwargs

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
    args = DPOConfig(**trainer_kwargs(cfg, started.out), beta=cfg.beta, max_length=cfg.max_length,
                     dataset_num_proc=None)
    trainer = DPOTrainer(model=started.model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=started.tokenizer, peft_config=cfg.lora.peft_config())
    trainer.train()
    summary = reward_summary(records)
    return finish_step(trainer, started, cfg, "dpo", {
        "preference_pairs": len(rows), "selection": cfg.selection, "mean_margin": sum(r["margin"] for r in prefs) / len(prefs),
        "sample_reward": summary, "prompt_version": template.version})
