"""Calibrated activation ranges for static INT8: the min/max each weight MatMul's input reaches.

Dynamic per-tensor quantisation (``DynamicQuantizeLinear``) takes one scale from the whole batch
tensor at run time, so a pair's score depends on which other pairs share its batch (measured on the
Home Depot student: logits move by up to 0.25 between batched and alone), which breaks the service's
contract that a batched result equals the same pair scored alone. Static quantisation fixes each
scale offline from these ranges instead, so every pair is quantised the same way in any batch.

Ranges are taken over *real* tokens only: padding positions are computed by the graph but masked out
of attention, so letting them widen a range would only cost resolution.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

Range = tuple[float, float]


def real_token_values(values: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Rows of a ``batch x seq x channels`` activation at unpadded positions (other shapes pass through)."""
    if values.ndim == 3 and values.shape[:2] == attention_mask.shape:
        return values[attention_mask.astype(bool)]
    return values.reshape(-1, values.shape[-1])


def activation_ranges(graph: Path, tensors: Sequence[str], batches: Iterable[dict[str, np.ndarray]],
                      threads: int = 0) -> dict[str, Range]:
    """``(min, max)`` of each named tensor over the real tokens of ``batches`` (each range includes 0)."""
    model = onnx.load(str(graph))
    exposed = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in exposed:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ranges.onnx"
        onnx.save(model, str(path))
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    low = dict.fromkeys(tensors, 0.0)
    high = dict.fromkeys(tensors, 0.0)
    for batch in batches:
        for name, values in zip(tensors, session.run(list(tensors), {k: batch[k] for k in inputs})):
            rows = real_token_values(values, batch["attention_mask"])
            low[name] = min(low[name], float(rows.min()))
            high[name] = max(high[name], float(rows.max()))
    return {name: (low[name], high[name]) for name in tensors}
