"""CPU kernel rewrites: slow ORT fusions split into standard ops, biases folded into INT8 MatMuls,
the split kept at session load, scores unchanged; ``relevance optimize`` gates a rewritten bundle."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export.config import OptimizeConfig
from export.cpu_kernels import ORT_FUSION_OF, rewrite_for_cpu
from export.mixed_precision import calibration_batches, matmul_input_ranges
from export.optimize import optimize_bundle
from export.parity import ParityError, batched_vs_alone
from export.transforms import quantize_int8, weight_matmuls
from relevance.backends import OnnxBackend
from relevance.bundle import load_bundle
from relevance.data import load_pairs
from relevance.model import BundleModel


def ops_of(graph: Path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(graph)).graph.node)


def ort_fused(graph: Path, dst: Path) -> Path:
    """The graph as ONNX Runtime rebuilds it at load time when nothing is disabled (the fused ops back)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    return dst


@pytest.fixture(scope="module")
def tiny(tiny_bundle):
    return BundleModel.load(load_bundle(tiny_bundle), "fp32", intra_op_threads=1)


def _batch(model: BundleModel) -> dict[str, np.ndarray]:
    return model.encoder.pad(model.encode(["a", "angle bracket for decking joists"],
                                          [{"title": "x"}, {"title": "simpson strong-tie 12-gauge angle"}]))


def test_exported_bundle_ships_split_graphs_and_records_the_optimizers_to_disable(tiny):
    graph = tiny.bundle.manifest.graph("fp32")
    assert set(graph.disabled_optimizers) == set(ORT_FUSION_OF.values())
    ops = ops_of(tiny.bundle.root / graph.path)
    assert ops["SkipLayerNormalization"] == ops["BiasGelu"] == 0
    assert ops["LayerNormalization"] > 0 and ops["Gelu"] > 0


def test_the_service_session_keeps_the_split_and_a_default_session_would_fuse_it_again(tiny, tmp_path):
    graph = tiny.bundle.graph_path("fp32")
    assert ops_of(ort_fused(graph, tmp_path / "fused.onnx"))["SkipLayerNormalization"] > 0
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "kept.onnx")
    ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=list(tiny.bundle.manifest.graph("fp32").disabled_optimizers))
    assert ops_of(tmp_path / "kept.onnx")["SkipLayerNormalization"] == 0


def test_splitting_a_fused_graph_keeps_its_logits(tiny, tmp_path):
    fused = ort_fused(tiny.bundle.graph_path("fp32"), tmp_path / "fused.onnx")
    before = ops_of(fused)
    disabled = rewrite_for_cpu(fused, tmp_path / "split.onnx")
    after = ops_of(tmp_path / "split.onnx")
    assert set(disabled) == {"SkipLayerNormFusion", "BiasGeluFusion"}
    assert after["SkipLayerNormalization"] == after["BiasGelu"] == 0
    assert after["LayerNormalization"] == before["SkipLayerNormalization"] and after["Gelu"] == before["BiasGelu"]
    batch = _batch(tiny)
    split = OnnxBackend(tmp_path / "split.onnx", intra_op_threads=1, disabled_optimizers=disabled)
    np.testing.assert_allclose(split.predict(batch), OnnxBackend(fused, intra_op_threads=1).predict(batch), atol=1e-5)
    assert batched_vs_alone(split, batch) <= 1e-5


def test_biases_fold_into_integer_matmuls(tiny, catalog_jsonl, tmp_path):
    fp32 = tiny.bundle.graph_path("fp32")
    ranges = matmul_input_ranges(fp32, calibration_batches(tiny, load_pairs(catalog_jsonl, "train")[:32], 16), 1)
    static = quantize_int8(fp32, tmp_path / "static.onnx", per_tensor_nodes=weight_matmuls(fp32), activation_ranges=ranges)
    rewrite_for_cpu(static, tmp_path / "folded.onnx")
    before, after = ops_of(static), ops_of(tmp_path / "folded.onnx")
    with_bias = [n for n in onnx.load(str(tmp_path / "folded.onnx")).graph.node
                 if n.op_type == "MatMulIntegerToFloat" and len(n.input) == 7 and n.input[6]]
    assert with_bias and after["Add"] == before["Add"] - len(with_bias)
    batch = _batch(tiny)
    np.testing.assert_allclose(OnnxBackend(tmp_path / "folded.onnx", intra_op_threads=1).predict(batch),
                               OnnxBackend(static, intra_op_threads=1).predict(batch), atol=1e-4)


def test_rewriting_needs_opset_17_for_layer_norm(tiny, tmp_path):
    fused = onnx.load(str(ort_fused(tiny.bundle.graph_path("fp32"), tmp_path / "fused.onnx")))
    for opset in fused.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 16
    onnx.save(fused, str(tmp_path / "old.onnx"))
    with pytest.raises(ValueError, match="opset >= 17"):
        rewrite_for_cpu(tmp_path / "old.onnx", tmp_path / "x.onnx")


def _fused_source_bundle(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A copy of the tiny bundle as an older exporter wrote it: fused graphs, nothing disabled."""
    from relevance.bundle.writer import write_manifest

    src = tmp_path / "fused-bundle"
    src.mkdir()
    m = load_bundle(tiny_bundle).manifest
    for g in m.graphs:
        ort_fused(tiny_bundle / g.path, src / g.path)
    (src / m.tokenizer).write_bytes((tiny_bundle / m.tokenizer).read_bytes())
    graphs = [g.model_copy(update={"disabled_optimizers": ()}) for g in m.graphs]
    write_manifest(src, graphs, [], **m.model_dump(exclude={"created", "graphs", "files"}))
    return src


def test_optimize_writes_a_gated_new_version_of_a_bundle(tiny_bundle, catalog_jsonl, tmp_path):
    src = _fused_source_bundle(tiny_bundle, tmp_path)
    out = optimize_bundle(OptimizeConfig(bundle=str(src), out=str(tmp_path / "new"), data=str(catalog_jsonl),
                                         version="9.9.9", test_split=""))
    new, old = load_bundle(out), load_bundle(src)
    assert new.manifest.version == "9.9.9" and new.manifest.name == old.manifest.name
    assert all(set(g.disabled_optimizers) == set(ORT_FUSION_OF.values()) for g in new.manifest.graphs)
    parity = new.manifest.parity
    assert parity["source_bundle"].startswith(f"{old.manifest.name} {old.manifest.version}")
    assert parity["fp32_max_abs_logit_diff"] <= 1e-4 and parity["int8_label_agreement"] >= 0.99
    assert "dev" in new.manifest.evaluation
    for precision in ("fp32", "int8"):
        a, b = BundleModel.load(old, precision), BundleModel.load(new, precision)
        np.testing.assert_allclose(a.run(a.encode("angle", [{"title": "bracket"}])),
                                   b.run(b.encode("angle", [{"title": "bracket"}])), atol=2e-3)


def test_optimize_refuses_a_failed_gate_and_leaves_nothing_behind(tiny_bundle, catalog_jsonl, tmp_path):
    with pytest.raises(ParityError, match="agrees with"):
        optimize_bundle(OptimizeConfig(bundle=str(tiny_bundle), out=str(tmp_path / "new"), data=str(catalog_jsonl),
                                       version="9.9.9", test_split="", min_agreement=1.01))
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new.*"))
    with pytest.raises(ValueError, match="new folder"):
        optimize_bundle(OptimizeConfig(bundle=str(tiny_bundle), out=str(tiny_bundle), data=str(catalog_jsonl),
                                       version="9.9.9"))


def test_optimize_serves_shorter_inputs_gated_on_labels_for_every_graph(tiny_bundle, catalog_jsonl, tmp_path):
    old = load_bundle(tiny_bundle)
    short = max(8, old.manifest.max_length // 2)
    out = optimize_bundle(OptimizeConfig(bundle=str(tiny_bundle), out=str(tmp_path / "short"), data=str(catalog_jsonl),
                                         version="9.9.9", test_split="", max_length=short,
                                         min_agreement=0.0, max_f1_drop=1.0))
    new = load_bundle(out)
    assert new.manifest.max_length == short and new.manifest.training == old.manifest.training
    parity = new.manifest.parity
    assert parity["source_max_length"] == old.manifest.max_length
    # a cut input changes scores: every graph is compared on dev labels, none on logit rounding
    assert "fp32_max_abs_logit_diff" not in parity
    assert {"fp32_label_agreement", "int8_label_agreement"} <= set(parity)
    model = BundleModel.load(new)
    long_title = " ".join(["cordless drill driver kit"] * 40)
    ids, _ = model.encode("drill", [{"title": long_title}])[0]
    assert len(ids) == short
    with pytest.raises(ParityError, match="FP32 agrees with"):  # the gate still holds for float graphs
        optimize_bundle(OptimizeConfig(bundle=str(tiny_bundle), out=str(tmp_path / "refused"), data=str(catalog_jsonl),
                                       version="9.9.9", test_split="", max_length=short, min_agreement=1.01))
    with pytest.raises(ValueError, match="at least 8"):
        OptimizeConfig(bundle=str(tiny_bundle), out=str(tmp_path / "x"), version="1", max_length=4)


def test_manifests_written_before_the_field_still_load(tiny_bundle, tmp_path):
    manifest = json.loads((tiny_bundle / "bundle.json").read_text())
    for g in manifest["graphs"]:
        g.pop("disabled_optimizers")
    from relevance.bundle.manifest import BundleManifest

    assert all(g.disabled_optimizers == () for g in BundleManifest(**manifest).graphs)
