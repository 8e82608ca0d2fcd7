"""The INT8 scheme the exported graphs use, shared by export (which writes the scales) and
quantisation-aware training (which simulates them), so the two cannot drift apart."""

from __future__ import annotations

import numpy as np


def uint8_scale_zero_point(low: float, high: float) -> tuple[float, int]:
    """Asymmetric uint8 quantisation of ``[low, high]`` (which contains 0), as ONNX ``QuantizeLinear`` uses it."""
    scale = max(high - low, 1e-8) / 255.0
    return scale, int(np.clip(round(-low / scale), 0, 255))
