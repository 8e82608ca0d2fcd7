"""Evaluation metrics, computed the same way for every report (training, export gate, eval, CRSD).

* accuracy, macro-F1 and per-class F1 over the 3 labels, and the confusion matrix
  (rows = truth, columns = prediction);
* NDCG@10 per query, averaged over queries with at least two candidates, ranking by the
  score (expected gain) against graded truth ``(rating - 1) / 2`` (or the label's gain);
* RMSE between the predicted mean rating ``sum_c p(c) * rating(c)`` and the human mean rating.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from relevance.labels import DEFAULT_GAINS, DEFAULT_RATINGS, LABELS


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits (last axis), shifted by the max for numerical safety."""
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = len(LABELS)) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(float)
    precision = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    denom = precision + recall
    return np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)


def ndcg_at_k(groups: Sequence[str], scores: np.ndarray, gains: np.ndarray, k: int = 10) -> float:
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        by_group[g].append(i)
    values = []
    for idx in by_group.values():
        if len(idx) < 2:
            continue
        idx = np.asarray(idx)
        rel = gains[idx]
        discounts = 1.0 / np.log2(np.arange(2, min(k, len(idx)) + 2))
        ideal = np.sort(rel)[::-1][:k] @ discounts
        if ideal <= 0:
            continue
        order = np.argsort(-scores[idx], kind="stable")[:k]
        values.append(float(rel[order] @ discounts / ideal))
    return float(np.mean(values)) if values else float("nan")


def evaluate(
    probs: np.ndarray,
    labels: Sequence[str],
    queries: Sequence[str],
    ratings: Sequence[float | None] | None = None,
    gains: Sequence[float] = DEFAULT_GAINS,
    class_ratings: Sequence[float] = DEFAULT_RATINGS,
) -> dict:
    """All report metrics from class probabilities ``probs`` (n x 3) and the truth."""
    y_true = np.array([LABELS.index(lbl) for lbl in labels])
    y_pred = probs.argmax(1)
    cm = confusion(y_true, y_pred)
    f1 = f1_per_class(cm)
    score = probs @ np.asarray(gains)
    out = {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()),
        "macro_f1": float(f1.mean()),
        "f1": {lbl: float(v) for lbl, v in zip(LABELS, f1)},
        "confusion": cm.tolist(),
    }
    have_ratings = ratings is not None and all(r is not None for r in ratings)
    truth_gain = (np.asarray(ratings, float) - 1) / 2 if have_ratings else np.asarray(gains)[y_true]
    out["ndcg@10"] = ndcg_at_k([q.strip().lower() for q in queries], score, truth_gain)
    if have_ratings:
        predicted_rating = probs @ np.asarray(class_ratings)
        out["rmse"] = float(np.sqrt(np.mean((predicted_rating - np.asarray(ratings, float)) ** 2)))
    return out


def format_report(metrics: dict, title: str = "") -> str:
    """Plain-text report (markdown-friendly) of :func:`evaluate`'s output."""
    lines = [f"## {title}" if title else ""]
    ndcg = metrics["ndcg@10"]
    ndcg_text = "n/a (no query with 2+ graded candidates)" if ndcg != ndcg else f"{ndcg:.4f}"  # NaN check
    lines.append(
        f"n={metrics['n']}  accuracy={metrics['accuracy']:.4f}  macro-F1={metrics['macro_f1']:.4f}  "
        f"NDCG@10={ndcg_text}" + (f"  RMSE={metrics['rmse']:.4f}" if "rmse" in metrics else "")
    )
    lines.append("F1 " + "  ".join(f"{k}={v:.4f}" for k, v in metrics["f1"].items()))
    lines.append("confusion (rows truth, cols predicted; order " + ", ".join(LABELS) + "):")
    lines += ["  " + " ".join(f"{c:6d}" for c in row) for row in metrics["confusion"]]
    return "\n".join(line for line in lines if line != "")
