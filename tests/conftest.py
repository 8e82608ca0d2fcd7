"""Session fixtures shared by the suites: fixture data, a tiny trained student and its real bundle.

The chain is the product's own: ``train_student`` -> ``export_bundle`` (parity gate included), on a
tiny BERT and synthetic data, so every suite runs on a genuine bundle in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import make_tiny_bert, write_catalog_jsonl

# A tiny model's logits sit close together, so INT8 flips a few near-ties that a real
# student would not: the fixture gate is looser than the product default (0.99 / 0.3 pt).
TINY_LIMITS = dict(max_abs_diff=1e-4, min_int8_agreement=0.9, max_int8_f1_drop=0.05)


@pytest.fixture(scope="session")
def catalog_jsonl(tmp_path_factory) -> Path:
    return write_catalog_jsonl(tmp_path_factory.mktemp("data") / "catalog.jsonl", n=600)


@pytest.fixture(scope="session")
def tiny_init(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-init"), hidden=64)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_init, catalog_jsonl) -> Path:
    pytest.importorskip("torch")
    from training.config import StudentTrainConfig
    from training.student import train_student

    out = tmp_path_factory.mktemp("tiny-run")
    cfg = StudentTrainConfig(
        data=str(catalog_jsonl), out=str(out), init=str(tiny_init), train_split="train", dev_split="dev",
        test_split="test", text_fields=("title", "brand", "description"), max_length=32, batch_size=16,
        epochs=10, lr=1e-3, head_lr=1e-3, warmup_ratio=0.0, class_weighting="none", rating_loss_weight=0.0,
        evals_per_epoch=1, seed=3, threads=1,
    )
    train_student(cfg)
    return out / "best"


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_checkpoint, catalog_jsonl) -> Path:
    """A real bundle (fused fp32 + INT8 graphs, tokenizer, verified manifest) of the tiny student."""
    from export.config import ExportConfig
    from export.pipeline import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    return export_bundle(ExportConfig(
        checkpoint=str(tiny_checkpoint), out=str(out), data=str(catalog_jsonl), name="tiny-student",
        version="0.0.1-test", **TINY_LIMITS,
    ))


@pytest.fixture(scope="session")
def static_bundle(tiny_bundle, catalog_jsonl, tmp_path_factory):
    """The tiny bundle serving a static per-tensor INT8 graph (the shipped bundles' scheme) as its only graph."""
    import shutil

    from export.mixed_precision import calibration_batches, matmul_input_ranges
    from export.transforms import quantize_int8, weight_matmuls
    from relevance.bundle import GraphEntry, load_bundle
    from relevance.bundle.writer import write_manifest
    from relevance.data import load_pairs
    from relevance.model import BundleModel

    source = load_bundle(tiny_bundle)
    model = BundleModel.load(source, "fp32", intra_op_threads=1)
    fp32 = source.graph_path("fp32")
    batches = calibration_batches(model, load_pairs(catalog_jsonl, "train")[:64], 16)
    root = tmp_path_factory.mktemp("static-bundle")
    quantize_int8(fp32, root / "model.int8.onnx", per_tensor_nodes=weight_matmuls(fp32),
                  activation_ranges=matmul_input_ranges(fp32, batches, 1))
    shutil.copy2(source.tokenizer_path, root / source.manifest.tokenizer)
    fields = source.manifest.model_dump(exclude={"created", "graphs", "files", "parity", "evaluation",
                                                 "default_precision"})
    write_manifest(root, [GraphEntry(path="model.int8.onnx", precision="int8")], [], **fields,
                   default_precision="int8")
    return root
