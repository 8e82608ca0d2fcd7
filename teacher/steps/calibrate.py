"""Label calibration: per-label logit offsets that undo a teacher's label prior.

A small SFT'd teacher can rank pairs sensibly by its label probabilities and still put most of them
in one class (SmolLM2 after SFT here: 90% ``exact``). Calibration fits offsets ``b`` (``b_exact = 0``)
on labelled pairs of a teacher-training split, choosing

    b* = argmax_b  macro-F1( argmax_c (log p_c + b_c),  human labels )

over a grid (ties: the smallest ``|b|``), as in prior / logit adjustment ("calibrate before use",
Zhao et al. 2021; Menon et al. 2021). The offsets go into a new teacher spec (``label_bias``); the
backend adds them at the label step while decoding, so the generated label, the chain's last line
and the probabilities all agree. Only ``teacher_train``-style splits may be used: never dev, test
or pool labels.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from relevance.data import load_pairs
from relevance.labels import LABELS
from relevance.metrics import confusion, f1_per_class
from teacher.sampling import sample_pairs
from teacher.settings import GenerateBase, check_label_split

log = logging.getLogger(__name__)


@dataclass
class CalibrateConfig(GenerateBase):
    """Fit per-label logit offsets on labelled teacher-training pairs (see the module docstring)."""

    out: str = field(default="runs/teacher/calibrated", metadata={"help": "output teacher folder (teacher.json)"})
    split: str = field(default="teacher_train", metadata={"help": "human-labelled split to fit on"})
    n_pairs: int = field(default=400, metadata={"help": "seeded random pairs (natural label mix) to fit on"})
    span: float = field(default=4.0, metadata={"help": "largest offset tried (in logits)"})
    step: float = field(default=0.1, metadata={"help": "grid step of the offsets"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_label_split(self.split, "calibration")
        if self.n_pairs < 3 or self.span <= 0 or self.step <= 0:
            raise ValueError("n_pairs >= 3, span > 0 and step > 0 required")


def macro_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Unweighted mean F1 over the labels, as in every report (:mod:`relevance.metrics`)."""
    return float(f1_per_class(confusion(truth, pred)).mean())


def shifted_labels(probs: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Label indices ``argmax_c(log p_c + b_c)``."""
    return (np.log(np.clip(probs, 1e-9, 1.0)) + bias).argmax(1)


def fit_label_bias(probs: np.ndarray, labels: Sequence[str], span: float = 4.0, step: float = 0.1) -> dict[str, float]:
    """Offsets in ``[-span, span]`` (last label fixed at 0) maximising macro-F1 of the shifted argmax."""
    truth = np.array([LABELS.index(lbl) for lbl in labels])
    grid = np.round(np.arange(-span, span + step / 2, step), 6)
    best, best_key = None, None
    for offsets in itertools.product(grid, repeat=len(LABELS) - 1):
        bias = np.array([*offsets, 0.0])
        key = (round(macro_f1(shifted_labels(probs, bias), truth), 10), -float(np.abs(bias).sum()))
        if best_key is None or key > best_key:
            best, best_key = bias, key
    return {lbl: float(b) for lbl, b in zip(LABELS, best)}


def calibrate(cfg: CalibrateConfig, backend=None) -> Path:
    """Generate on a seeded sample of ``cfg.split``, fit the offsets, save ``cfg.out/teacher.json``."""
    from teacher.model import read_spec

    spec, root = read_spec(cfg.teacher)
    if spec.label_bias:
        raise ValueError(f"{cfg.teacher} is already calibrated; calibrate the teacher it was made from")
    pairs = sample_pairs(load_pairs(cfg.data, cfg.split), cfg.n_pairs, cfg.seed)
    if backend is None:
        from teacher.backends.local import LocalBackend

        backend = LocalBackend.from_teacher(cfg.teacher, cfg.template(), cfg.generation, dtype=cfg.dtype,
                                            threads=cfg.threads)
    started = time.perf_counter()
    completions = [c for (c,) in backend.complete(pairs)]
    usable = [(p, c.probs) for p, c in zip(pairs, completions) if c.probs]
    if len(usable) < len(LABELS):
        raise ValueError(f"only {len(usable)} of {len(pairs)} outputs carry label probabilities: nothing to fit")
    probs = np.array([[pr[lbl] for lbl in LABELS] for _, pr in usable])
    labels = [p.label for p, _ in usable]
    bias = fit_label_bias(probs, labels, cfg.span, cfg.step)
    truth = np.array([LABELS.index(lbl) for lbl in labels])
    before, shifted = probs.argmax(1), shifted_labels(probs, np.array([bias[lbl] for lbl in LABELS]))
    out = Path(cfg.out)
    calibrated = spec.extend(root, out, None, "calibrate", label_bias=bias)
    calibrated.save(out)
    record = {"step": "calibrate", "teacher": calibrated.__dict__, "config": cfg.to_json(), "label_bias": bias,
              "pairs": len(pairs), "with_probs": len(usable),
              "macro_f1_before": macro_f1(before, truth), "macro_f1_after": macro_f1(shifted, truth),
              "predicted_before": {lbl: int((before == i).sum()) for i, lbl in enumerate(LABELS)},
              "predicted_after": {lbl: int((shifted == i).sum()) for i, lbl in enumerate(LABELS)},
              "seconds": round(time.perf_counter() - started, 1)}
    (out / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    log.info("label bias %s: macro-F1 on %d %s pairs %.4f -> %.4f", bias, len(usable), cfg.split,
             record["macro_f1_before"], record["macro_f1_after"])
    return out
