"""A CRSD-trained student exports through the unchanged pipeline as the plain classifier."""

from __future__ import annotations

import json

import onnxruntime as ort
from safetensors import safe_open

from relevance.bundle import load_bundle
from tests.conftest import TINY_LIMITS


def _signature(bundle, precision="fp32"):
    entry = next(g for g in load_bundle(bundle).manifest.graphs if g.precision == precision)
    session = ort.InferenceSession(str(bundle / entry.path), providers=["CPUExecutionProvider"])
    return ([(i.name, i.type, i.shape) for i in session.get_inputs()],
            [(o.name, o.type, o.shape) for o in session.get_outputs()])


def test_exported_crsd_student_has_the_standard_classifiers_inputs_and_outputs(crsd_settings, tmp_path, tiny_bundle):
    from export.config import ExportConfig
    from export.pipeline import export_bundle
    from training.config import CRSDConfig
    from training.crsd import train_crsd

    cfg = CRSDConfig.from_preset("crsd", **{**crsd_settings, "out": str(tmp_path / "run"), "epochs": 2})
    report = train_crsd(cfg)
    best = tmp_path / "run" / "best"
    assert report["parameters"]["train_only_projection_head"] > 0
    assert json.loads((best / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]
    with safe_open(str(best / "model.safetensors"), "pt") as fh:
        assert not [k for k in fh.keys() if "projection" in k]
    meta = json.loads((best / "student.json").read_text())
    assert meta["distillation"]["preset"] == "crsd" and meta["config"]["infonce_weight"] > 0

    bundle = export_bundle(ExportConfig(checkpoint=str(best), out=str(tmp_path / "bundle"), data=cfg.data,
                                        name="tiny-crsd", version="0.0.1-test", precisions=("fp32",),
                                        default_precision="fp32", **TINY_LIMITS))
    assert _signature(bundle) == _signature(tiny_bundle)
    manifest = load_bundle(bundle).manifest
    assert manifest.max_length == cfg.max_length  # the bundle encodes the standard view only
