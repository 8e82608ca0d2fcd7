"""Manifest validation and every bundle-loading error path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from relevance.bundle import BundleError, GraphEntry, load_bundle
from relevance.bundle.manifest import ServiceTextTemplate
from relevance.bundle.writer import write_manifest


@pytest.fixture()
def fake_bundle(tmp_path) -> Path:
    """A bundle whose 'graphs' are placeholder bytes: enough to test the manifest and checksums."""
    (tmp_path / "model.onnx").write_bytes(b"fp32-graph")
    (tmp_path / "model.int8.onnx").write_bytes(b"int8-graph")
    (tmp_path / "tokenizer.json").write_text("{}")
    write_manifest(
        tmp_path,
        [GraphEntry(path="model.onnx", precision="fp32"), GraphEntry(path="model.int8.onnx", precision="int8")],
        [],
        name="fake", version="1", max_length=32, default_precision="int8", opset=17, source_checkpoint="none",
    )
    return tmp_path


def _edit_manifest(root: Path, **changes) -> None:
    data = json.loads((root / "bundle.json").read_text())
    data.update(changes)
    (root / "bundle.json").write_text(json.dumps(data))


def test_valid_bundle_loads_and_resolves_graphs(fake_bundle):
    bundle = load_bundle(fake_bundle)
    assert bundle.manifest.labels == ("irrelevant", "partial", "exact")
    assert bundle.graph_path().name == "model.int8.onnx"
    assert bundle.graph_path("fp32").name == "model.onnx"
    assert len(bundle.checksum) == 16


def test_checksum_changes_with_weights(fake_bundle, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    shutil.copytree(fake_bundle, other, dirs_exist_ok=True)
    (other / "model.int8.onnx").write_bytes(b"retrained")
    write_manifest(other, list(load_bundle(fake_bundle).manifest.graphs), [], name="fake", version="2",
                   max_length=32, default_precision="int8", opset=17, source_checkpoint="none")
    assert load_bundle(other).checksum != load_bundle(fake_bundle).checksum


def test_missing_folder(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")


def test_missing_manifest(tmp_path):
    with pytest.raises(BundleError, match="bundle.json is missing"):
        load_bundle(tmp_path)


def test_manifest_not_json(fake_bundle):
    (fake_bundle / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(fake_bundle)


def test_unknown_field_is_named(fake_bundle):
    _edit_manifest(fake_bundle, colour="blue")
    with pytest.raises(BundleError, match="colour"):
        load_bundle(fake_bundle)


def test_missing_required_field_is_named(fake_bundle):
    data = json.loads((fake_bundle / "bundle.json").read_text())
    del data["max_length"]
    (fake_bundle / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="max_length"):
        load_bundle(fake_bundle)


def test_missing_file_is_named(fake_bundle):
    (fake_bundle / "model.int8.onnx").unlink()
    with pytest.raises(BundleError, match="model.int8.onnx .*missing"):
        load_bundle(fake_bundle)


def test_bad_checksum_is_named(fake_bundle):
    (fake_bundle / "tokenizer.json").write_text('{"tampered": true}')
    with pytest.raises(BundleError, match="checksum mismatch for tokenizer.json"):
        load_bundle(fake_bundle)


def test_unverified_load_skips_checksums(fake_bundle):
    (fake_bundle / "tokenizer.json").write_text('{"tampered": true}')
    assert load_bundle(fake_bundle, verify=False).manifest.name == "fake"


def test_default_precision_needs_a_graph(fake_bundle):
    _edit_manifest(fake_bundle, default_precision="fp16")
    with pytest.raises(BundleError, match="default_precision 'fp16' has no graph"):
        load_bundle(fake_bundle)


def test_labels_gains_ratings_lengths_must_agree(fake_bundle):
    _edit_manifest(fake_bundle, gains=[0.0, 1.0])
    with pytest.raises(BundleError, match="same length"):
        load_bundle(fake_bundle)


def test_gains_outside_unit_interval_rejected(fake_bundle):
    _edit_manifest(fake_bundle, gains=[0.0, 0.5, 2.0])
    with pytest.raises(BundleError, match=r"gains must lie in \[0, 1\]"):
        load_bundle(fake_bundle)


def test_graph_without_checksum_rejected(fake_bundle):
    data = json.loads((fake_bundle / "bundle.json").read_text())
    del data["files"]["model.onnx"]
    (fake_bundle / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="without a sha256 entry.*model.onnx"):
        load_bundle(fake_bundle)


def test_unsupported_format_version(fake_bundle):
    _edit_manifest(fake_bundle, format_version=99)
    with pytest.raises(BundleError, match="format_version 99"):
        load_bundle(fake_bundle)


def test_text_template_renders_fields_in_order_and_skips_empty():
    template = ServiceTextTemplate(fields=("title", "brand", "description"), max_field_chars=13)
    text = template.render({"title": "Angle  bracket", "brand": "", "description": "galvanised steel bracket"})
    assert text == "Angle bracket ; description: galvanised st"
