"""Graph optimisation: ONNX Runtime's transformer fusions, dynamic INT8 quantisation, FP16 conversion."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

log = logging.getLogger(__name__)


def fuse_bert(src: Path, dst: Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Apply the BERT fusions offline so every serving replica loads an already-fused fp32 graph.

    Returns the fused-operator counts (e.g. ``Attention``: one per layer) for the manifest.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=1)
    model.save_model_to_file(str(dst))
    stats = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
    log.info("fused operators: %s", stats)
    return stats


def quantize_int8(src: Path, dst: Path, per_channel: bool = True) -> Path:
    """Dynamic INT8 quantisation of the weights (activations quantised at run time): CPU default.

    Works on the fused graph so quantised ``Attention``/``MatMul`` kernels replace the fp32 ones.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Shape inference does not know the fused contrib ops' outputs; they are all fp32 activations.
    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return dst


def convert_fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and activations for GPUs; inputs and outputs keep their types (int64 in, fp32 out)."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst))
    return dst
