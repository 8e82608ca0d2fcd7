"""Report metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from relevance.metrics import evaluate, ndcg_at_k


def test_classification_metrics_by_hand():
    # truth: irr, par, exa, exa ; predicted: irr, exa, exa, par
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.0, 0.1, 0.9], [0.1, 0.6, 0.3]])
    m = evaluate(probs, ["irrelevant", "partial", "exact", "exact"], ["a", "a", "b", "b"], [1.0, 2.0, 3.0, 2.67])
    assert m["accuracy"] == pytest.approx(0.5)
    # F1: irrelevant 1.0, partial 0 (tp 0), exact: p=1/2, r=1/2 -> 0.5
    assert m["f1"] == pytest.approx({"irrelevant": 1.0, "partial": 0.0, "exact": 0.5})
    assert m["macro_f1"] == pytest.approx(0.5)
    assert m["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    expected_rating = probs @ np.array([1.0, 2.0, 3.0])
    rmse = math.sqrt(np.mean((expected_rating - np.array([1.0, 2.0, 3.0, 2.67])) ** 2))
    assert m["rmse"] == pytest.approx(rmse)


def test_ndcg_by_hand():
    # one query, gains (truth) 1, 0, 0.5 ; scores rank them 0.5-first, then 1, then 0
    scores = np.array([0.6, 0.1, 0.9])
    gains = np.array([1.0, 0.0, 0.5])
    dcg = 0.5 / math.log2(2) + 1.0 / math.log2(3) + 0.0
    idcg = 1.0 / math.log2(2) + 0.5 / math.log2(3)
    assert ndcg_at_k(["q", "q", "q"], scores, gains) == pytest.approx(dcg / idcg)


def test_ndcg_skips_single_candidate_and_zero_gain_queries():
    scores = np.array([0.5, 0.2, 0.3, 0.9, 0.1])
    gains = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    # q1: single candidate -> skipped; q2: all-zero gains -> skipped; q3: perfect order -> 1
    assert ndcg_at_k(["q1", "q2", "q2", "q3", "q3"], scores, gains) == pytest.approx(1.0)


def test_report_says_when_ndcg_is_undefined():
    from relevance.metrics import format_report

    probs = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    m = evaluate(probs, ["exact", "irrelevant"], ["q1", "q2"])  # one candidate per query: no ranking
    assert math.isnan(m["ndcg@10"])
    assert "NDCG@10=n/a" in format_report(m)
