"""Train -> export -> parity -> bundle load -> eval, end to end on the tiny student."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from export.config import ExportConfig
from export.parity import ParityError
from export.pipeline import export_bundle
from relevance.bundle import load_bundle
from relevance.cli import app
from relevance.data import load_pairs
from relevance.model import BundleModel


def test_bundle_contents_and_manifest(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    m = bundle.manifest
    assert {g.precision for g in m.graphs} == {"fp32", "int8"} and m.default_precision == "int8"
    assert set(m.files) == {"model.onnx", "model.int8.onnx", "tokenizer.json"}
    assert m.text.fields == ("title", "brand", "description")
    assert m.source_checkpoint.endswith("best") and m.opset == 17
    assert m.parity["fp32_max_abs_logit_diff"] <= 1e-4
    assert {"dev", "test"} <= set(m.evaluation)
    assert m.evaluation["test"]["precision"] == "int8"
    # the bundle explains how its model was trained (copied from the checkpoint's student.json)
    assert m.training["method"] == "human labels" and m.training["train_split"] == "train"
    assert m.training["pairs"] > 0 and m.training["seed"] == 3 and m.training["data"].endswith(".jsonl")


def test_graphs_are_fused_and_quantised(tiny_bundle):
    fused_ops = {n.op_type for n in onnx.load(tiny_bundle / "model.onnx").graph.node}
    # attention and embeddings fused; SkipLayerNormalization split back for the CPU kernels (test_cpu_kernels)
    assert {"MultiHeadAttention", "EmbedLayerNormalization", "LayerNormalization"} <= fused_ops
    assert "SkipLayerNormalization" not in fused_ops
    int8_ops = {n.op_type for n in onnx.load(tiny_bundle / "model.int8.onnx").graph.node}
    assert {"MatMulNBits", "QEmbedLayerNormalization"} <= int8_ops
    int8_graph = onnx.load(tiny_bundle / "model.int8.onnx").graph
    plain = [n.name for n in int8_graph.node if n.op_type == "MatMul"]
    assert not [n for n in plain if "/encoder/" in n], f"encoder projections left in fp32: {plain}"
    graph = onnx.load(tiny_bundle / "model.int8.onnx").graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["logits"]


def test_onnx_matches_pytorch(tiny_bundle, tiny_checkpoint, catalog_jsonl):
    import torch
    from transformers import AutoModelForSequenceClassification

    torch_model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint).eval()
    model = BundleModel.load(load_bundle(tiny_bundle), "fp32")
    pairs = load_pairs(catalog_jsonl, "test")[:20]
    inputs = model.encoder.pad(model.encode([p.query for p in pairs], [p.service for p in pairs]))
    with torch.no_grad():
        ref = torch_model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    np.testing.assert_allclose(model.backend.predict(inputs), ref, atol=1e-4)


def test_eval_cli_reproduces_bundle_numbers(tiny_bundle, catalog_jsonl, tmp_path):
    out = tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["eval", str(tiny_bundle), "--data", str(catalog_jsonl), "--split", "test",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    measured = json.loads(out.read_text())
    recorded = load_bundle(tiny_bundle).manifest.evaluation["test"]
    for key in ("accuracy", "macro_f1", "ndcg@10", "rmse"):
        assert measured[key] == pytest.approx(recorded[key], abs=1e-9)
    assert "macro-F1" in result.output


def test_gate_failure_is_loud_and_leaves_no_bundle(tiny_checkpoint, catalog_jsonl, tmp_path):
    out = tmp_path / "strict"
    with pytest.raises(ParityError, match="fp32 ONNX logits differ"):
        export_bundle(ExportConfig(checkpoint=str(tiny_checkpoint), out=str(out), data=str(catalog_jsonl),
                                   max_abs_diff=0.0))
    assert not out.exists()
    assert not list(tmp_path.glob(".strict.*")), "staging folder must be cleaned up"


def test_export_cli_fails_with_exit_code_on_gate(tiny_checkpoint, catalog_jsonl, tmp_path):
    result = CliRunner().invoke(app, ["export", str(tiny_checkpoint), str(tmp_path / "b"), "--data",
                                      str(catalog_jsonl), "--min-int8-agreement", "1.01"])
    assert result.exit_code == 1
    assert "INT8 agrees with fp32" in result.output


def test_fp16_graph_for_gpu(tiny_checkpoint, catalog_jsonl, tmp_path):
    from tests.conftest import TINY_LIMITS

    out = export_bundle(ExportConfig(checkpoint=str(tiny_checkpoint), out=str(tmp_path / "fp16"), data=str(catalog_jsonl),
                                     precisions=("fp32", "int8", "fp16"), test_split="", **TINY_LIMITS))
    bundle = load_bundle(out)
    assert bundle.graph_path("fp16").is_file()
    fp16 = BundleModel.load(bundle, "fp16")
    fp32 = BundleModel.load(bundle, "fp32")
    pairs = load_pairs(catalog_jsonl, "dev")[:16]
    args = ([p.query for p in pairs], [p.service for p in pairs])
    np.testing.assert_allclose(fp16.predict_probs(*args), fp32.predict_probs(*args), atol=5e-3)


def test_ship_int8_only_keeps_parity_record(tiny_checkpoint, catalog_jsonl, tmp_path):
    from tests.conftest import TINY_LIMITS

    out = export_bundle(ExportConfig(checkpoint=str(tiny_checkpoint), out=str(tmp_path / "cpu"), data=str(catalog_jsonl),
                                     test_split="", ship=("int8",), **TINY_LIMITS))
    bundle = load_bundle(out)
    assert sorted(p.name for p in out.iterdir()) == ["bundle.json", "model.int8.onnx", "tokenizer.json"]
    assert [g.precision for g in bundle.manifest.graphs] == ["int8"]
    assert "fp32_max_abs_logit_diff" in bundle.manifest.parity


def test_eval_cli_without_split_scores_every_pair(tiny_bundle, catalog_jsonl, tmp_path):
    out = tmp_path / "all.json"
    result = CliRunner().invoke(app, ["eval", str(tiny_bundle), "--data", str(catalog_jsonl), "--split", "",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["n"] == len(load_pairs(catalog_jsonl))
