"""Rewrite a graph for ONNX Runtime's CPU kernels: undo the fusions that are slower than the plain
ops they replace, then fold the freed bias additions into the INT8 MatMuls.

ONNX Runtime fuses a BERT layer's ``bias + residual + LayerNorm`` into ``SkipLayerNormalization``
and ``bias + GELU`` into ``BiasGelu``. On CPU those contrib kernels are not the fast path: the
student's padded batch of 32 x 48 tokens spends more time in its 12 ``SkipLayerNormalization`` nodes
than in half of its INT8 MatMuls, while ``Add`` + ``Add`` + ``LayerNormalization`` (opset 17) does the
same arithmetic several times faster (``relevance lab profile``: the table in docs/benchmarks.md).

:func:`split_slow_fusions` rewrites them back into those standard ops:

* ``SkipLayerNormalization(x, skip, gamma, beta, bias)`` -> ``LayerNorm((x + bias) + skip)``; the
  optional ``input_skip_bias_sum`` output becomes the sum's tensor;
* ``BiasGelu(x, bias)`` -> ``Gelu(x + bias)`` (the contrib ``Gelu``: the same exact erf GELU).

:func:`fold_matmul_bias` then hands each ``MatMulIntegerToFloat -> Add(bias)`` pair's bias to the
MatMul's own optional bias input, so the bias is added while the output is written instead of in
another pass over the activations.

ONNX Runtime would fuse the split ops again when it loads the graph, so the rewrite returns the names of
the optimizers to switch off; the bundle manifest records them per graph
(:attr:`relevance.bundle.manifest.GraphEntry.disabled_optimizers`) and the serving backend passes
them to ``InferenceSession``. The arithmetic is the same up to float rounding (the fused kernel
accumulates its statistics differently), so an fp32 graph moves by ~1e-6; in a static INT8 graph an
activation lying on a rounding boundary can land one quantisation step away, which is why
``relevance optimize`` gates a rewritten bundle against the one it came from on dev.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import helper

# contrib op -> the ONNX Runtime graph transformer that would rebuild it at session load
ORT_FUSION_OF = {"SkipLayerNormalization": "SkipLayerNormFusion", "BiasGelu": "BiasGeluFusion"}
SLOW_FUSIONS = tuple(ORT_FUSION_OF)


def _attr(node: onnx.NodeProto, name: str, default: float) -> float:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _split_skip_layer_norm(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    x, skip, gamma = node.input[:3]
    beta = node.input[3] if len(node.input) > 3 else ""
    bias = node.input[4] if len(node.input) > 4 else ""
    outputs = list(node.output) + [""] * (4 - len(node.output))
    out, mean, inv_std, total = outputs[:4]
    if mean or inv_std:
        raise ValueError(f"{node.name}: SkipLayerNormalization's mean/inv_std outputs are used; cannot split it")
    nodes = []
    if bias:
        nodes.append(helper.make_node("Add", [x, bias], [f"{node.name}_biased"], name=f"{node.name}_bias"))
        x = f"{node.name}_biased"
    total = total or f"{node.name}_sum"
    nodes.append(helper.make_node("Add", [x, skip], [total], name=f"{node.name}_residual"))
    norm_inputs = [total, gamma] + ([beta] if beta else [])
    nodes.append(helper.make_node("LayerNormalization", norm_inputs, [out], name=f"{node.name}_norm",
                                  axis=-1, epsilon=_attr(node, "epsilon", 1e-12)))
    return nodes


def _split_bias_gelu(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    x, bias = node.input
    biased = f"{node.name}_biased"
    return [helper.make_node("Add", [x, bias], [biased], name=f"{node.name}_bias"),
            helper.make_node("Gelu", [biased], list(node.output), name=f"{node.name}_gelu", domain="com.microsoft")]


_SPLITTERS = {"SkipLayerNormalization": _split_skip_layer_norm, "BiasGelu": _split_bias_gelu}


def split_slow_fusions(nodes: list[onnx.NodeProto], ops: tuple[str, ...] = SLOW_FUSIONS) -> tuple[list[onnx.NodeProto], set[str]]:
    """Every node of ``ops`` split into standard ops; returns the new nodes and the op types split."""
    unknown = set(ops) - set(_SPLITTERS)
    if unknown:
        raise ValueError(f"cannot split {sorted(unknown)}; known: {sorted(_SPLITTERS)}")
    out, split = [], set()
    for node in nodes:
        if node.op_type in ops and node.domain == "com.microsoft":
            out.extend(_SPLITTERS[node.op_type](node))
            split.add(node.op_type)
        else:
            out.append(node)
    return out, split


def fold_matmul_bias(nodes: list[onnx.NodeProto], initializers: dict[str, onnx.TensorProto]) -> list[onnx.NodeProto]:
    """``Add(MatMulIntegerToFloat(...), b)`` with ``b`` a 1-D constant as one ``MatMulIntegerToFloat`` with
    bias ``b`` (its input 6), when the Add is the MatMul's only consumer and the MatMul has no bias yet."""
    producer = {out: n for n in nodes for out in n.output}
    consumers: dict[str, int] = {}
    for n in nodes:
        for name in n.input:
            consumers[name] = consumers.get(name, 0) + 1
    dropped: set[int] = set()
    for add in (n for n in nodes if n.op_type == "Add" and n.domain == ""):
        for i, bias in enumerate(add.input):
            mm = producer.get(add.input[1 - i])
            tensor = initializers.get(bias)
            if (mm is None or mm.op_type != "MatMulIntegerToFloat" or len(mm.input) > 6
                    or consumers.get(mm.output[0]) != 1 or tensor is None or len(tensor.dims) != 1):
                continue
            mm.input.extend([""] * (6 - len(mm.input)) + [bias])
            mm.output[0] = add.output[0]
            dropped.add(id(add))
            break
    return [n for n in nodes if id(n) not in dropped]


def rewrite_for_cpu(src: Path, dst: Path, ops: tuple[str, ...] = SLOW_FUSIONS) -> tuple[str, ...]:
    """Write ``src`` to ``dst`` with the slow fusions of ``ops`` split and biases folded into INT8 MatMuls.

    Returns the ONNX Runtime optimizers a session must disable to keep the split (empty when the
    graph had none of ``ops``). ``src`` may equal ``dst``.
    """
    model = onnx.load(str(src))
    nodes, split = split_slow_fusions(list(model.graph.node), ops)
    if split and not any(o.domain in ("", "ai.onnx") and o.version >= 17 for o in model.opset_import):
        raise ValueError("LayerNormalization needs opset >= 17; export the graph with --opset 17")
    nodes = fold_matmul_bias(nodes, {t.name: t for t in model.graph.initializer})
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(dst))
    return tuple(sorted(ORT_FUSION_OF[op] for op in split))
