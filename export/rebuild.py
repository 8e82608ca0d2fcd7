"""The student of a static INT8 bundle graph, rebuilt as a Hugging Face BERT with the graph's weights.

A shipped bundle holds ONNX Runtime's static INT8 graph only (no checkpoint travels with it), and its
Microsoft contrib operators (QEmbedLayerNormalization, MatMulIntegerToFloat, MultiHeadAttention) are
read by ONNX Runtime alone. Rebuilding the model from the graph's own weights lets the same student be
written in standard operators (:mod:`export.qdq`) for other engines, or compared under them
(``relevance loadtest engines``), without the training run that made it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

_LAYER_MATMUL = re.compile(r"^/bert/encoder/layer\.(\d+)/(.+)/MatMul_quant_to_float$")
_QKV = ("query", "key", "value")


def _dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    return (q.astype(np.float32) - zero_point.astype(np.float32)) * scale.astype(np.float32)


def student_from_int8_graph(graph: Path):
    """A Hugging Face ``BertForSequenceClassification`` whose fp32 weights are the INT8 graph's, dequantised.

    Reads ONNX Runtime's static INT8 BERT graph (what ``relevance export --int8-scheme static`` ships):
    the quantised embeddings of QEmbedLayerNormalization, each MatMulIntegerToFloat's per-column int8
    weights, the fused q/k/v biases of MultiHeadAttention and the fp32 LayerNorm, pooler and classifier
    initialisers. Raises ValueError for a graph of another shape (block-wise INT8, another architecture).
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    model = onnx.load(str(graph))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = list(model.graph.node)
    embed = [n for n in nodes if n.op_type == "QEmbedLayerNormalization"]
    attention = [n for n in nodes if n.op_type == "MultiHeadAttention"]
    if len(embed) != 1 or not attention:
        raise ValueError(f"{graph} is not ONNX Runtime's static INT8 BERT graph (QEmbedLayerNormalization, "
                         "MultiHeadAttention, MatMulIntegerToFloat); export with --int8-scheme static")
    weights: dict[str, np.ndarray] = {}

    e = embed[0].input  # ids, segments, 3 tables + gamma + beta (quantised), mask, 5 scales, 5 zero points
    for k, name in enumerate(("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
                              "LayerNorm.weight", "LayerNorm.bias")):
        weights[f"bert.embeddings.{name}"] = _dequantize(inits[e[2 + k]], inits[e[8 + k]], inits[e[13 + k]])
    for node in nodes:
        found = _LAYER_MATMUL.match(node.name) if node.op_type == "MatMulIntegerToFloat" else None
        if not found:
            continue
        layer, module = found.groups()
        prefix = f"bert.encoder.layer.{layer}.{module.replace('/', '.')}"
        w = _dequantize(inits[node.input[1]], inits[node.input[3]], inits[node.input[5]])  # [in, out]
        weights[f"{prefix}.weight"] = w.T
        if len(node.input) > 6 and node.input[6]:
            weights[f"{prefix}.bias"] = inits[node.input[6]]
    for node in attention:
        layer = _LAYER_MATMUL.match(node.input[0].replace("_output_0", "_quant_to_float"))
        if not layer:
            raise ValueError(f"cannot tell the layer of attention node {node.name} from {node.input[0]}")
        qkv = np.split(inits[node.input[3]], 3)  # one bias for q, k and v, concatenated in that order
        for name, bias in zip(_QKV, qkv, strict=True):
            weights[f"bert.encoder.layer.{layer.group(1)}.attention.self.{name}.bias"] = bias
    for name in ("bert.pooler.dense", "classifier"):
        weights[f"{name}.weight"] = inits[f"{name}.weight_Transposed"].T
        weights[f"{name}.bias"] = inits[f"{name}.bias"]

    word = weights["bert.embeddings.word_embeddings.weight"]
    epsilon = next(a.f for a in embed[0].attribute if a.name == "epsilon")
    heads = next(a.i for a in attention[0].attribute if a.name == "num_heads")
    config = BertConfig(
        vocab_size=word.shape[0], hidden_size=word.shape[1], num_hidden_layers=len(attention), num_attention_heads=heads,
        intermediate_size=weights["bert.encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=weights["bert.embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=weights["bert.embeddings.token_type_embeddings.weight"].shape[0], layer_norm_eps=epsilon,
        num_labels=weights["classifier.weight"].shape[0], attn_implementation="eager",
    )
    student = BertForSequenceClassification(config).eval()
    state = student.state_dict()
    for name in state:
        if name in inits:  # the LayerNorms keep their Hugging Face names in the graph
            weights.setdefault(name, inits[name])
    missing = [n for n in state if n not in weights and not n.endswith("position_ids")]
    if missing:
        raise ValueError(f"{graph}: no weights found for {missing[:5]} ({len(missing)} in all)")
    student.load_state_dict({n: torch.tensor(np.ascontiguousarray(w)) for n, w in weights.items()}, strict=False)
    return student
