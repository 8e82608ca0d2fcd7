"""The backend interface: what the batcher, the INT8 gate and evaluation need from a model runtime.

Kept to one method (cf. text-embeddings-inference's ``backends/core``) so the callers do not care
whether ONNX Runtime on CPU, CUDA or TensorRT, or a PyTorch module in the export's parity check,
computes the logits. A second engine is a new module beside :mod:`relevance.backends.onnxruntime`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    """A model runtime: padded BERT inputs in, logits out."""

    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Logits (batch x labels, float32) for padded BERT inputs."""
        ...
