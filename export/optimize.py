"""Graph optimisation: ONNX Runtime's transformer fusions, INT8 quantisation, FP16 conversion."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

log = logging.getLogger(__name__)

# 8-bit weights in blocks of this many input channels, each block with its own scale.
INT8_BLOCK_SIZE = 32
# MatMulNBits accuracy level 4: activations are quantised to int8 per block at run time and the
# product runs on int8 dot-product kernels (level 0/1 would dequantise and compute in fp32).
INT8_ACCURACY_LEVEL = 4


def fuse_bert(src: Path, dst: Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Apply the BERT fusions offline so every serving replica loads an already-fused fp32 graph.

    Attention is fused as ``MultiHeadAttention`` with the Q/K/V projections left as ``MatMul``
    nodes (rather than one ``Attention`` op owning its weights), so INT8 quantisation below can reach
    every projection. Returns the fused-operator counts for the manifest.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.use_multi_head_attention = True
    model = optimize_model(
        str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
        optimization_options=options, opt_level=1,
    )
    model.save_model_to_file(str(dst))
    stats = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
    log.info("fused operators: %s", stats)
    return stats


def quantize_int8(src: Path, dst: Path, block_size: int = INT8_BLOCK_SIZE, embeddings: bool = True) -> Path:
    """INT8 graph for CPU: block-wise 8-bit weights on every MatMul, int8 embedding tables.

    Why not plain ``quantize_dynamic``: its per-tensor activation scales flip a few percent of the
    Home Depot student's dev labels (the parity gate wants >= 99% agreement), because activation
    outliers cannot be resolved by one scale per tensor; block-wise scales (``MatMulNBits``, 8 bits,
    blocks of 32, int8 compute) pass at the same size (~25 MB for MiniLM-L6, a quarter of fp32).
    ``python -m export.quant_sweep`` measures the alternatives (docs/student.md). Embedding tables, the largest tensors, are stored as
    int8 through ``QEmbedLayerNormalization``; the attention core (softmax(QK^T)V) stays fp32.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    config = DefaultWeightOnlyQuantConfig(
        block_size=block_size, is_symmetric=True, accuracy_level=INT8_ACCURACY_LEVEL, bits=8
    )
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(src)), bits=8, block_size=block_size, is_symmetric=True,
        accuracy_level=INT8_ACCURACY_LEVEL, algo_config=config,
    )
    quantizer.process()
    weights_only = dst.with_suffix(".matmul.onnx")
    quantizer.model.save_model_to_file(str(weights_only), use_external_data_format=False)
    if not embeddings:
        weights_only.rename(dst)
        return dst
    # Shape inference does not know the fused contrib ops' outputs; they are all fp32 activations.
    quantize_dynamic(
        str(weights_only), str(dst), weight_type=QuantType.QInt8, per_channel=True,
        op_types_to_quantize=["EmbedLayerNormalization"],
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    weights_only.unlink()
    return dst


def convert_fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and activations for GPUs; inputs and outputs keep their types (int64 in, fp32 out)."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst))
    return dst
