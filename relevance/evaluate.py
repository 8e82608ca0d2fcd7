"""Evaluate a bundle through the serving code path (torch-free, so ``relevance eval`` runs on a serving install)."""

from __future__ import annotations

from relevance.metrics import evaluate
from relevance.model import BundleModel


def evaluate_bundle_model(model: BundleModel, pairs, progress=None) -> dict:
    """Report metrics of a loaded bundle on labelled pairs (the code path of ``relevance eval``)."""
    probs = model.predict_probs([p.query for p in pairs], [p.service for p in pairs], progress=progress)
    return evaluate_probabilities(model, pairs, probs)


def evaluate_probabilities(model: BundleModel, pairs, probs) -> dict:
    """Metrics of ``probs`` (one row per pair, as ``model.predict_probs`` returns them) with the bundle's gains."""
    m = model.bundle.manifest
    return evaluate(
        probs, [p.label for p in pairs], [p.query for p in pairs], [p.rating for p in pairs],
        gains=m.gains, class_ratings=m.ratings,
    )


def bundle_evaluation(served: BundleModel, dev: list, data, test_split: str | None, dev_split: str = "dev") -> dict:
    """The manifest's ``evaluation``: metrics of the served graph on dev (and ``test_split``), with where from."""
    from relevance.data import load_pairs

    evaluation = {dev_split: evaluate_bundle_model(served, dev)}
    if test_split:
        evaluation[test_split] = evaluate_bundle_model(served, load_pairs(data, test_split))
    return {k: {**v, "precision": served.precision, "data": str(data)} for k, v in evaluation.items()}

