"""Trace a Hugging Face BERT pair classifier to ONNX with dynamic batch and sequence axes."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from export.config import DEFAULT_OPSET

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "logits"


def export_onnx(model, path: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model`` (eval mode, eager attention) as ONNX: inputs int64 [batch, sequence], output logits.

    The TorchScript exporter is used because ONNX Runtime's BERT fusions (Attention,
    SkipLayerNormalization, EmbedLayerNormalization) recognise its graph patterns.
    """
    model = model.eval()
    sample = torch.ones((2, 8), dtype=torch.long)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES} | {OUTPUT_NAME: {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (sample, sample, torch.zeros_like(sample)),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )
    return path
