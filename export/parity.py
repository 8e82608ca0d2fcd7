"""The parity gate: an exported graph must score like the model it came from, or export fails.

* fp32 ONNX vs PyTorch (or, for a rewritten bundle, vs the graph it was rewritten from): max |logit
  difference| over a sample of real, padded batches <= ``max_abs_diff``.
* INT8 vs fp32 ONNX on the dev split: label agreement >= ``min_agreement`` and macro-F1 lost
  <= ``max_f1_drop`` (absolute, 0.003 = 0.3 pt). For a quantisation-aware checkpoint the reference
  is its fake-quantised PyTorch model instead (:mod:`training.quantization_aware`): that is the
  model it was trained and selected as, and the INT8 graph must score like it.
* Every graph, batched vs alone: a pair's logits in a padded batch equal its logits scored alone
  within ``max_batch_diff`` (the service batches pairs from different requests, so a graph whose
  numbers depend on the batch, like dynamic per-tensor INT8, would make a score depend on traffic).
"""

from __future__ import annotations

import numpy as np
import torch

from export.config import ParityLimits
from relevance.backends import Backend
from relevance.data import Pair
from relevance.metrics import evaluate
from relevance.model import BundleModel


class ParityError(RuntimeError):
    """An exported graph failed the parity gate; the message gives the measured numbers and the limit."""


class TorchBackend:
    """A PyTorch sequence classifier behind the serving :class:`~relevance.backends.Backend` interface, so
    parity checks score it through exactly the bundle's encoding and batching
    (``dataclasses.replace(bundle_model, backend=TorchBackend(model)).predict_probs(...)``)."""

    def __init__(self, model) -> None:
        self.model = model.eval()

    @torch.no_grad()
    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.float().numpy()


def logit_diff(reference: Backend, onnx_model: BundleModel, pairs: list[Pair], batch_size: int = 32) -> float:
    """Largest absolute logit difference between ``reference`` (PyTorch through :class:`TorchBackend`, or
    another graph's backend) and ``onnx_model`` on the same padded batches."""
    worst = 0.0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        inputs = onnx_model.encoder.pad(onnx_model.encode([p.query for p in chunk], [p.service for p in chunk]))
        worst = max(worst, float(np.abs(reference.predict(inputs) - onnx_model.backend.predict(inputs)).max()))
    return worst


def batched_vs_alone(backend: Backend, batch: dict[str, np.ndarray]) -> float:
    """Largest |logit difference| between each row of a padded ``batch`` and that row run alone, unpadded."""
    batched = backend.predict(batch)
    lengths = batch["attention_mask"].sum(1)
    alone = [backend.predict({k: v[i : i + 1, : lengths[i]] for k, v in batch.items()})[0] for i in range(len(lengths))]
    return float(np.abs(batched - np.stack(alone)).max())


def batch_diff(model: BundleModel, pairs: list[Pair]) -> float:
    """:func:`batched_vs_alone` on one batch of ``pairs`` (mixed lengths, so most rows carry padding)."""
    return batched_vs_alone(model.backend, model.encoder.pad(model.encode([p.query for p in pairs],
                                                                          [p.service for p in pairs])))


def compare_labels(reference: np.ndarray, probs: np.ndarray, pairs: list[Pair], reference_name: str = "fp32",
                   graph: str = "int8") -> dict:
    """Label agreement and macro-F1 of a graph's class probabilities ``probs`` against the
    ``reference`` ones on labelled ``pairs`` (the dev split), under ``graph``-prefixed keys. For an
    INT8 graph the reference is the fp32 graph's, or for a quantisation-aware checkpoint the
    fake-quantised model's (the model dev selection chose; its fp32 weights are only latent); for a
    bundle served with shorter inputs (``relevance optimize --max-length``), the source bundle's graph."""
    queries, labels = [p.query for p in pairs], [p.label for p in pairs]
    f1_ref = evaluate(reference, labels, queries)["macro_f1"]
    f1 = evaluate(probs, labels, queries)["macro_f1"]
    return {
        f"{graph}_reference": reference_name,
        f"{graph}_label_agreement": label_agreement(reference, probs),
        # the INT8 key predates the other graphs' (bundle.json files carry it)
        "reference_dev_macro_f1" if graph == "int8" else f"{graph}_reference_dev_macro_f1": f1_ref,
        f"{graph}_dev_macro_f1": f1,
        f"{graph}_dev_macro_f1_drop": f1_ref - f1,
        f"{graph}_max_prob_diff": float(np.abs(reference - probs).max()),
        f"{graph}_pairs": len(pairs),
    }


def label_agreement(p: np.ndarray, q: np.ndarray) -> float:
    return float((p.argmax(1) == q.argmax(1)).mean())


def check(parity: dict[str, float], limits: ParityLimits) -> None:
    """Raise :class:`ParityError` listing every limit the measured numbers break."""
    failures = []
    if parity.get("fp32_max_abs_logit_diff", 0.0) > limits.max_abs_diff:
        failures.append(
            f"fp32 ONNX logits differ from {parity.get('fp32_reference', 'PyTorch')} by {parity['fp32_max_abs_logit_diff']:.2e} "
            f"(limit {limits.max_abs_diff:.0e})"
        )
    # the graphs' own keys only: an optimised bundle also carries its source's as source_int8_...
    for graph in ("fp32", "int8"):
        key = f"{graph}_label_agreement"
        if key not in parity:
            continue
        if parity[key] < limits.min_int8_agreement:
            failures.append(
                f"{graph.upper()} agrees with {parity.get(f'{graph}_reference', 'fp32')} on {parity[key]:.2%} of dev "
                f"labels (limit {limits.min_int8_agreement:.0%})"
            )
        if parity[f"{graph}_dev_macro_f1_drop"] > limits.max_int8_f1_drop:
            failures.append(
                f"{graph.upper()} loses {100 * parity[f'{graph}_dev_macro_f1_drop']:.2f} pt dev macro-F1 "
                f"(limit {100 * limits.max_int8_f1_drop:.2f} pt)"
            )
    for key, diff in parity.items():
        if (key.endswith("_batched_vs_alone_max_logit_diff") and not key.startswith("source_")
                and diff > limits.max_batch_diff):
            failures.append(f"{key.split('_')[0]} logits of a pair change by {diff:.2e} between a batch and "
                            f"alone (limit {limits.max_batch_diff:.0e}): its scores would depend on other traffic")
    if failures:
        raise ParityError("export failed the parity gate: " + "; ".join(failures))
