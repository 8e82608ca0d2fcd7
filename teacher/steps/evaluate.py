"""Teacher evaluation on a labelled split: the report's metrics plus parse failures and reward.

Greedy outputs are parsed. Two views of the same run:

* **all pairs** (the headline): a parse failure counts as a wrong answer; accuracy, macro-F1 and
  per-class F1 come from a 3x4 confusion matrix whose 4th column is "failed" (so failures lower
  recall), with :func:`relevance.metrics.confusion` and :func:`relevance.metrics.f1_per_class`;
* **parsed pairs**: :func:`relevance.metrics.evaluate` (accuracy, macro-F1, per-class F1, NDCG@10,
  RMSE) on the pairs whose output parsed, from the label-token probabilities (one-hot on the
  parsed label when a backend gives none).

Plus the parse-failure rate, the predicted-label distribution, the mean reward per dimension
over all outputs (:mod:`~teacher.chains.reward`) and the pairs/s of the run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from relevance.data import Pair, load_pairs
from relevance.labels import LABELS
from relevance.metrics import confusion, evaluate, f1_per_class
from teacher.backends.base import Completion, TeacherBackend
from teacher.chains.prompts import parse_output
from teacher.chains.reward import RewardWeights, mean_rewards, score_output
from teacher.sampling import sample_pairs
from teacher.settings import GenerateBase


@dataclass
class TeacherEvalConfig(GenerateBase):
    """Measure a teacher on a labelled split."""

    out: str = field(default="", metadata={"help": "write the metrics JSON here ('' = print only)"})
    outputs: str = field(default="", metadata={"help": "write each output (id, text, probs) as JSONL here"})
    annotations: str = field(default="", metadata={
        "help": "measure the outputs recorded in this annotation file instead of running the teacher (--teacher "
                "unused): the split's pairs it has a record of, failed records counted as wrong"})
    split: str = field(default="test", metadata={"help": "split to evaluate"})
    n_pairs: int = field(default=300, metadata={"help": "evaluate a seeded random sample of N pairs (0 = all)"})
    balanced: bool = field(default=False, metadata={"help": "sample the same number of pairs per label"})
    weights: RewardWeights = field(default_factory=RewardWeights,
                                   metadata={"help": "reward weights", "cli_prefix": ""})  # --label-scoring, ...

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.weights, dict):
            self.weights = RewardWeights(**self.weights)


def evaluate_outputs(pairs: Sequence[Pair], completions: Sequence[Completion], weights: RewardWeights | None = None,
                     max_chars: int = 400) -> dict:
    """Metrics of one output per labelled pair (see the module docstring)."""
    if len(pairs) != len(completions) or not pairs:
        raise ValueError("need one completion per pair, and at least one pair")
    parsed = [parse_output(c.text) for c in completions]
    y_true = np.array([LABELS.index(p.label) for p in pairs])
    failed = len(LABELS)
    y_pred = np.array([LABELS.index(x.label) if x.ok else failed for x in parsed])
    cm = confusion(y_true, y_pred, n=len(LABELS) + 1)[: len(LABELS)]
    f1 = f1_per_class(np.vstack([cm, np.zeros((1, len(LABELS) + 1), dtype=cm.dtype)]))[: len(LABELS)]
    result = {
        "n": len(pairs),
        "accuracy": float((y_true == y_pred).mean()),
        "macro_f1": float(f1.mean()),
        "f1": {lbl: float(v) for lbl, v in zip(LABELS, f1)},
        "confusion_with_failed": cm.tolist(),
        "parse_failure_rate": float((y_pred == failed).mean()),
        "predicted": {k: int(v) for k, v in Counter(x.label or "failed" for x in parsed).items()},
        "reward": mean_rewards([score_output(c.text, p, weights, max_chars, parsed=x).to_json()
                                for p, c, x in zip(pairs, completions, parsed)]),
    }
    ok = [i for i, x in enumerate(parsed) if x.ok]
    if ok:
        probs = np.array([
            [completions[i].probs[lbl] for lbl in LABELS] if completions[i].probs else
            [float(lbl == parsed[i].label) for lbl in LABELS] for i in ok
        ])
        result["parsed_only"] = evaluate(probs, [pairs[i].label for i in ok], [pairs[i].query for i in ok],
                                         [pairs[i].rating for i in ok])
        result["probs_available"] = sum(completions[i].probs is not None for i in ok) / len(ok)
    return result


def evaluate_teacher(cfg: TeacherEvalConfig, backend: TeacherBackend | None = None) -> dict:
    """Generate greedily for a seeded sample of ``cfg.split`` and measure (``cfg.out`` gets the JSON).

    With ``cfg.annotations`` the sample is drawn from the pairs the file has a record of, and the
    recorded outputs are measured (:class:`~teacher.backends.recorded.RecordedBackend`).
    """
    split = load_pairs(cfg.data, cfg.split)
    unrecorded = None
    if backend is None and cfg.annotations:
        from teacher.backends.recorded import RecordedBackend

        backend = RecordedBackend(cfg.annotations)
        recorded = [p for p in split if p.id in backend]
        unrecorded, split = len(split) - len(recorded), recorded
        if not split:
            raise ValueError(f"{cfg.annotations} has no record of a {cfg.split} pair")
    pairs = sample_pairs(split, cfg.n_pairs, cfg.seed, balanced=cfg.balanced)
    load_s = 0.0
    if backend is None:
        from teacher.backends.local import LocalBackend

        t0 = time.perf_counter()
        backend = LocalBackend.from_teacher(cfg.teacher, cfg.template(),
                                            cfg.generation, dtype=cfg.dtype, threads=cfg.threads)
        load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    completions = [c for (c,) in backend.complete(pairs, sample=False, n=1)]
    seconds = time.perf_counter() - t0
    result = evaluate_outputs(pairs, completions, cfg.weights)
    result |= {"teacher": {"name": backend.name, "version": backend.version,
                           "path": cfg.annotations or cfg.teacher},
               "prompt_version": backend.prompt_version, "split": cfg.split, "seed": cfg.seed,
               "balanced": cfg.balanced, "generate_seconds": round(seconds, 1), "load_seconds": round(load_s, 1),
               # replaying records measures nothing of the teacher's speed
               "pairs_per_s": round(len(pairs) / seconds, 3) if seconds and unrecorded is None else None}
    if unrecorded is not None:
        result |= {"annotations": cfg.annotations, "split_pairs_without_record": unrecorded}
    model = getattr(backend, "model", None)  # local backends: the compression ratio needs the size
    if model is not None and hasattr(model, "parameters"):
        result["parameters"] = sum(p.numel() for p in model.parameters())
    if cfg.out:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps(result, indent=2) + "\n")
    if cfg.outputs:
        Path(cfg.outputs).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.outputs).write_text("".join(
            json.dumps({"id": p.id, "output": c.text, "probs": c.probs, "error": c.error}, ensure_ascii=False) + "\n"
            for p, c in zip(pairs, completions)))
    return result


def format_teacher_report(result: dict, title: str = "") -> str:
    lines = [f"## {title}"] if title else []
    lines.append(f"n={result['n']}  accuracy={result['accuracy']:.4f}  macro-F1={result['macro_f1']:.4f}  "
                 f"parse failures={result['parse_failure_rate']:.3f}  (failures count as wrong)")
    lines.append("F1 " + "  ".join(f"{k}={v:.4f}" for k, v in result["f1"].items()))
    lines.append("predicted " + json.dumps(result["predicted"]))
    if result.get("reward"):
        lines.append("reward " + "  ".join(f"{k}={v:.3f}" for k, v in result["reward"].items()))
    if "parsed_only" in result:
        p = result["parsed_only"]
        lines.append(f"parsed only: n={p['n']}  accuracy={p['accuracy']:.4f}  macro-F1={p['macro_f1']:.4f}")
    if result.get("pairs_per_s"):
        lines.append(f"{result['pairs_per_s']:.2f} pairs/s ({result['generate_seconds']} s generating)")
    return "\n".join(lines)
