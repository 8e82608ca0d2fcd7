"""A static INT8 bundle graph rewritten in standard ONNX operators, quantisation kept: the QDQ graph.

ONNX Runtime's static INT8 graph (what the bundles ship) is written in its own contrib operators. The
same model with the *same* quantisation can be written in standard operators only: a plain BERT (the
student rebuilt by :func:`export.rebuild.student_from_int8_graph`) where

* every weight MatMul takes its int8 weights and per-column scales from the source graph, behind a
  ``DequantizeLinear``;
* every MatMul input passes a ``QuantizeLinear`` -> ``DequantizeLinear`` pair with the source graph's
  static uint8 scale and zero point (the activation quantisation quantisation-aware training learnt);
* the embedding tables stay uint8 behind a ``DequantizeLinear`` (the file stays the source's size).

OpenVINO reads this "QDQ" form and runs those MatMuls on its own INT8 kernels (AMX on CPUs that have
it); ONNX Runtime reads it too. Everything between the MatMuls (attention scores, softmax, GELU,
LayerNorm) runs in float, as in the source graph.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
from onnx import helper

from export.onnx_graph import export_onnx
from export.rebuild import student_from_int8_graph

QUANT_SUFFIX = "_quant_to_float"


def qdq_graph(int8_graph: Path, out: Path, plain_graph: Path | None = None) -> Path:
    """Write ``int8_graph`` (ONNX Runtime's static INT8 BERT graph) to ``out`` as the QDQ graph above.
    ``plain_graph``: the student already rebuilt from it and exported (else rebuilt here)."""
    source = onnx.load(str(int8_graph))
    src_inits = {i.name: i for i in source.graph.initializer}
    matmuls = {n.name.removesuffix(QUANT_SUFFIX): n for n in source.graph.node if n.op_type == "MatMulIntegerToFloat"}
    embed = next((n for n in source.graph.node if n.op_type == "QEmbedLayerNormalization"), None)
    if embed is None or not matmuls:
        raise ValueError(f"{int8_graph} is not ONNX Runtime's static INT8 BERT graph; export with --int8-scheme static")
    if plain_graph is not None:
        plain = onnx.load(str(plain_graph))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            plain = onnx.load(str(export_onnx(student_from_int8_graph(int8_graph), Path(tmp) / "plain.onnx")))
    graph = plain.graph
    inits = {i.name: i for i in graph.initializer}
    added: dict[str, onnx.TensorProto] = {}
    dropped: set[str] = set()
    head: list[onnx.NodeProto] = []  # weight dequantisation, before every other node

    def copy(name: str) -> str:
        if name in inits and name not in dropped:
            raise ValueError(f"initialiser {name} of {int8_graph} clashes with one of the rebuilt graph")
        added.setdefault(name, src_inits[name])
        return name

    def dequantized(weight: str, q: str, scale: str, zero: str, axis: int | None) -> str:
        attrs = {} if axis is None else {"axis": axis}
        head.append(helper.make_node("DequantizeLinear", [copy(q), copy(scale), copy(zero)], [f"{weight}_dequantized"],
                                     name=f"{weight}_DequantizeLinear", **attrs))
        dropped.add(weight)
        return f"{weight}_dequantized"

    renamed: dict[str, str] = {}
    for k in range(3):  # word, position and token-type tables: uint8 with one scale each
        table = embed.input[2 + k].removesuffix("_quantized")
        if table not in inits:
            raise ValueError(f"the rebuilt graph has no {table} to take the quantised table's place")
        renamed[table] = dequantized(table, embed.input[2 + k], embed.input[8 + k], embed.input[13 + k], None)

    body: list[onnx.NodeProto] = []
    activations: dict[str, str] = {}
    replaced = 0
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
        src = matmuls.get(node.name) if node.op_type == "MatMul" and node.input[1] in inits else None
        if src is not None:
            x = node.input[0]
            if x not in activations:  # one pair per tensor: q, k and v share theirs
                scale, zero = copy(src.input[2]), copy(src.input[4])
                body.append(helper.make_node("QuantizeLinear", [x, scale, zero], [f"{x}_quantized"],
                                             name=f"{x}_QuantizeLinear"))
                body.append(helper.make_node("DequantizeLinear", [f"{x}_quantized", scale, zero], [f"{x}_dequantized"],
                                             name=f"{x}_DequantizeLinear"))
                activations[x] = f"{x}_dequantized"
            weight = node.input[1]
            node.input[0] = activations[x]
            node.input[1] = dequantized(weight, src.input[1], src.input[3], src.input[5], 1)
            replaced += 1
        body.append(node)
    if replaced != len(matmuls):
        raise ValueError(f"{replaced} of the {len(matmuls)} INT8 MatMuls of {int8_graph} found in the rebuilt graph")

    kept = [i for i in graph.initializer if i.name not in dropped]
    del graph.initializer[:]
    graph.initializer.extend(kept + list(added.values()))
    del graph.node[:]
    graph.node.extend(head + body)
    onnx.checker.check_model(plain)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(plain, str(out))
    return out
