"""Graph optimisation: ONNX Runtime's transformer fusions, INT8 quantisation, FP16 conversion."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx

from export.activation_ranges import Range
from relevance.quantization import uint8_scale_zero_point

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


def quantize_int8(src: Path, dst: Path, block_size: int = INT8_BLOCK_SIZE, embeddings: bool = True,
                  per_tensor_nodes: Sequence[str] = (), activation_ranges: Mapping[str, Range] | None = None) -> Path:
    """INT8 graph for CPU: 8-bit weights on every MatMul, int8 embedding tables.

    Two kernels, chosen per MatMul:

    * block-wise (``MatMulNBits``, 8 bits, blocks of ``block_size`` input channels, int8 compute):
      the activations get one scale per block at run time, so activation outliers cost little
      accuracy, but the kernel is slow on x86 (1.16x fp32 on the Home Depot student);
    * per-tensor (per-channel int8 weights, one uint8 activation scale per tensor, ``MatMulInteger``):
      2.2x fp32, but a few outlier-heavy MatMuls flip labels (all of them per-tensor: 96% dev
      agreement, below the 99% gate).

    ``per_tensor_nodes`` names the MatMuls that take the fast kernel (the rest stay block-wise);
    :mod:`export.mixed_precision` picks them by measured sensitivity. Their activation scales are
    static, fixed from ``activation_ranges`` (:mod:`export.activation_ranges`), so a pair scores
    the same in any batch; without ranges they are dynamic (batch-dependent; kept for comparison). Embedding tables, the largest
    tensors, are stored as int8 through ``QEmbedLayerNormalization``; the attention core
    (softmax(QK^T)V) stays fp32. ``relevance lab quant-sweep`` measures the schemes (docs/training.md).
    """
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    per_tensor = list(per_tensor_nodes)
    config = DefaultWeightOnlyQuantConfig(
        block_size=block_size, is_symmetric=True, accuracy_level=INT8_ACCURACY_LEVEL, bits=8
    )
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(src)), bits=8, block_size=block_size, is_symmetric=True,
        accuracy_level=INT8_ACCURACY_LEVEL, nodes_to_exclude=per_tensor, algo_config=config,
    )
    quantizer.process()
    weights_only = dst.with_suffix(".matmul.onnx")
    quantizer.model.save_model_to_file(str(weights_only), use_external_data_format=False)
    dynamic = per_tensor + ([n.name for n in quantizer.model.model.graph.node
                             if n.op_type == "EmbedLayerNormalization"] if embeddings else [])
    if not dynamic:
        weights_only.rename(dst)
        return dst
    quantize_per_tensor(weights_only, dst, only=dynamic, activation_ranges=activation_ranges)
    weights_only.unlink()
    return dst


def quantize_per_tensor(src: Path, dst: Path, only: Sequence[str] | None = None,
                        exclude: Sequence[str] = (), activation_ranges: Mapping[str, Range] | None = None) -> Path:
    """Per-channel int8 weights and one uint8 scale per activation tensor (``MatMulInteger``),
    embedding tables too; ``only`` restricts it to those nodes, ``exclude`` skips some.

    Built by ONNX Runtime's ``quantize_dynamic``; with ``activation_ranges`` (tensor -> calibrated
    min/max) each run-time ``DynamicQuantizeLinear`` is then replaced by a ``QuantizeLinear`` with
    the constant scale and zero point of its input's range (static quantisation, batch-invariant).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_quantize=list(only) if only else None,
                     nodes_to_exclude=list(exclude),
                     # shape inference does not know the fused contrib ops' outputs; all are fp32 activations
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    if activation_ranges is not None:
        freeze_activation_scales(dst, activation_ranges)
    return dst


def freeze_activation_scales(graph: Path, ranges: Mapping[str, Range], fuse: bool = True) -> Path:
    """Swap every ``DynamicQuantizeLinear`` for ``QuantizeLinear`` with its input's calibrated scale
    (then, with ``fuse``, each integer MatMul chain for one kernel: :func:`fuse_integer_matmuls`)."""
    from onnx import helper, numpy_helper

    model = onnx.load(str(graph))
    nodes = list(model.graph.node)
    missing = sorted({n.input[0] for n in nodes if n.op_type == "DynamicQuantizeLinear"} - set(ranges))
    if missing:
        raise ValueError(f"no calibrated activation range for {missing}: calibrate every quantised MatMul input")
    for i, node in enumerate(nodes):
        if node.op_type != "DynamicQuantizeLinear":
            continue
        quantized, scale_name, zero_name = node.output
        scale, zero_point = uint8_scale_zero_point(*ranges[node.input[0]])
        model.graph.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), scale_name),
                                        numpy_helper.from_array(np.array(zero_point, np.uint8), zero_name)])
        nodes[i] = helper.make_node("QuantizeLinear", [node.input[0], scale_name, zero_name], [quantized],
                                    name=f"{node.name}_static")
    del model.graph.node[:]
    model.graph.node.extend(fuse_integer_matmuls(nodes) if fuse else nodes)
    onnx.save(model, str(graph))
    return graph


def fuse_integer_matmuls(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """``MatMulInteger -> Cast -> Mul(Mul(a_scale, b_scale))`` as one ``MatMulIntegerToFloat``.

    ONNX Runtime fuses this chain itself only while the activation scale comes from a
    ``DynamicQuantizeLinear``; with a constant scale, constant folding merges the two scales first
    and the unfused Cast and Mul cost ~15% of the static graph's run time. Fused here instead.
    """
    from onnx import helper

    producer = {out: n for n in nodes for out in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    fused, dropped = {}, set()
    for mm in (n for n in nodes if n.op_type == "MatMulInteger"):
        cast = consumers.get(mm.output[0], [])
        scale = consumers.get(cast[0].output[0], []) if len(cast) == 1 and cast[0].op_type == "Cast" else []
        if len(scale) != 1 or scale[0].op_type != "Mul":
            continue
        scales = producer.get(scale[0].input[1])
        if scales is None or scales.op_type != "Mul" or len(consumers[scales.output[0]]) != 1:
            continue
        a, b, a_zero, b_zero = mm.input
        fused[id(mm)] = helper.make_node(
            "MatMulIntegerToFloat", [a, b, scales.input[0], scales.input[1], a_zero, b_zero], [scale[0].output[0]],
            name=f"{mm.name}_to_float", domain="com.microsoft")
        dropped |= {id(cast[0]), id(scale[0]), id(scales)}
    return [fused.get(id(n), n) for n in nodes if id(n) not in dropped]


def weight_matmuls(graph: Path) -> list[str]:
    """Names of the MatMuls whose second input is a weight (the ones quantisation can reach), in graph order."""
    model = onnx.load(str(graph))
    weights = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def convert_fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and activations for GPUs; inputs and outputs keep their types (int64 in, fp32 out)."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst))
    return dst
