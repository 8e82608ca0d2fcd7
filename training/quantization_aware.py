"""Quantisation-aware fine-tuning: make a trained student robust to the fast static INT8 graph.

Static per-tensor INT8 (per-channel int8 weights, one calibrated uint8 scale per activation tensor;
``relevance export --int8-scheme static``) is the fast CPU graph that also scores a pair the same
in any batch, but after plain post-training quantisation it flips a few percent of the student's
dev labels, below the parity gate's 99%. This fine-tunes the trained student for a short run with
that quantisation simulated in its forward pass (fake quantisation with straight-through gradients,
Jacob et al., *Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference*, CVPR 2018), anchored to the starting checkpoint's predictions:

.. math::

    \\mathcal{L} = \\mathrm{KL}\\big(p^{ref} \\,\\|\\, p^{int8}_\\theta\\big)
                 + \\mathrm{KL}\\big(p^{ref} \\,\\|\\, p^{fp32}_\\theta\\big)
                 + \\lambda \\, \\mathcal{L}_{rel}\\big(z^{int8}_\\theta, y\\big)

``p^{ref}``: the starting checkpoint's class probabilities (computed once, fixed); ``p^{int8}``: the
forward pass with every encoder projection's input and weight fake-quantised exactly as export will
quantise them; ``p^{fp32}``: the plain forward pass of the same weights; ``L_rel`` the student's
label loss (:class:`training.losses.relevance.RelevanceLoss`) with weight ``lambda``. Both passes are
pulled to the same fixed target, so the exported fp32 graph and its INT8 graph agree (what the gate
measures) and neither drifts far from the model that was validated. The output is a plain HF
checkpoint; export quantises it as usual.

Fake quantisation (what :func:`export.transforms.quantize_per_tensor` does with frozen scales):

* weight ``W`` (out x in), symmetric int8 per output channel: ``s_o = max_i |W_oi| / 127``,
  ``W~ = s_o * clamp(round(W / s_o), -127, 127)``;
* input ``x`` with calibrated range ``[lo, hi]`` (real tokens, measured by the export),
  asymmetric uint8: ``s = (hi - lo) / 255``, ``z = round(-lo / s)``,
  ``x~ = s * (clamp(round(x / s) + z, 0, 255) - z)``;
* the embedding tables and the embedding LayerNorm's gain and bias, one uint8 scale per tensor over
  ``[min(0, t), max(0, t)]`` (what ``QEmbedLayerNormalization`` stores; on the Home Depot student
  leaving them out of the simulation costs 4 pt of agreement with the shipped graph);
* gradients pass straight through the rounding (``x + sg(x~ - x)``).

The input ranges are calibrated once on seeded training pairs and stored in ``student.json``;
export quantises with exactly these ranges (``--int8-scheme static``) and gates the INT8 graph
against this simulation, the model that dev selection actually chose.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from relevance.data import load_pairs
from relevance.quantization import uint8_scale_zero_point
from training.batching import sorted_batches
from training.config import QuantAwareConfig
from training.losses.kl import ViewKLLoss
from training.student import (
    EncodedPairs,
    LabelTargets,
    SupervisedObjective,
    batch_inputs,
    encode_pairs,
    fit,
    human_label_targets,
    load_student,
    predict_logits,
    read_student_meta,
    start_run,
    training_record,
)

# The encoder projections export quantises (the MatMuls with a weight; pooler and head stay fp32).
PROJECTIONS = ("attention.self.query", "attention.self.key", "attention.self.value",
               "attention.output.dense", "intermediate.dense", "output.dense")


def straight_through(x: torch.Tensor, quantised: torch.Tensor) -> torch.Tensor:
    return x + (quantised - x).detach()


def fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    scale = weight.detach().abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127.0
    return straight_through(weight, torch.clamp(torch.round(weight / scale), -127, 127) * scale)


def fake_quant_activation(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    scale, zero = uint8_scale_zero_point(low, high)
    return straight_through(x, (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale)


def fake_quant_table(table: torch.Tensor) -> torch.Tensor:
    """A weight stored as one uint8 tensor over ``[min(0, t), max(0, t)]`` (how ONNX Runtime stores the
    embedding tables and the embedding LayerNorm of ``QEmbedLayerNormalization``)."""
    low, high = min(0.0, float(table.detach().min())), max(0.0, float(table.detach().max()))
    return fake_quant_activation(table, low, high)


class FakeQuantLinear(nn.Linear):
    """An ``nn.Linear`` whose forward simulates static INT8 while ``quantize`` is on (same parameters,
    so checkpoints load and save as the plain model)."""

    quantize: bool = True
    input_range: tuple[float, float] = (0.0, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.quantize:
            return super().forward(x)
        return F.linear(fake_quant_activation(x, *self.input_range), fake_quant_weight(self.weight), self.bias)


class FakeQuantEmbedding(nn.Embedding):
    """An embedding table read through its uint8 copy while ``quantize`` is on."""

    quantize: bool = True

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not self.quantize:
            return super().forward(ids)
        return F.embedding(ids, fake_quant_table(self.weight), self.padding_idx)


class FakeQuantLayerNorm(nn.LayerNorm):
    """The embedding LayerNorm with uint8 gain and bias while ``quantize`` is on."""

    quantize: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.quantize:
            return super().forward(x)
        return F.layer_norm(x, self.normalized_shape, fake_quant_table(self.weight), fake_quant_table(self.bias), self.eps)


FAKE_QUANT = (FakeQuantLinear, FakeQuantEmbedding, FakeQuantLayerNorm)


def projections(model: nn.Module) -> dict[str, nn.Linear]:
    """The encoder's weight projections by module name (36 for a 6-layer BERT)."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and ".encoder.layer." in name and name.split(".", 4)[-1] in PROJECTIONS}


@torch.no_grad()
def calibrate_input_ranges(model: nn.Module, encoder, data: EncodedPairs, batch_size: int = 64) -> dict[str, tuple[float, float]]:
    """``(min, max)`` of each projection's input over the real tokens of ``data`` (0 included)."""
    ranges = {name: (0.0, 0.0) for name in projections(model)}
    mask: list[torch.Tensor] = []

    def hook(name):
        def record(_module, args):
            rows = args[0][mask[0].bool()]
            low, high = ranges[name]
            ranges[name] = (min(low, float(rows.min())), max(high, float(rows.max())))
        return record

    handles = [m.register_forward_pre_hook(hook(name)) for name, m in projections(model).items()]
    model.eval()
    device = next(model.parameters()).device
    try:
        for idx in sorted_batches(data.lengths, batch_size):
            inputs = batch_inputs(encoder, data, idx, device)
            mask[:] = [inputs["attention_mask"]]
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
    return ranges


def prepare_fake_quant(model: nn.Module, ranges: dict[str, tuple[float, float]]) -> nn.Module:
    """Simulate the static INT8 graph in place: each projection becomes a :class:`FakeQuantLinear` with its
    calibrated input range; the embedding tables and embedding LayerNorm read uint8 copies."""
    for name, module in projections(model).items():
        module.__class__ = FakeQuantLinear
        module.input_range = tuple(ranges[name])
    embeddings = model.base_model.embeddings
    for module in (embeddings.word_embeddings, embeddings.position_embeddings, embeddings.token_type_embeddings):
        module.__class__ = FakeQuantEmbedding
    embeddings.LayerNorm.__class__ = FakeQuantLayerNorm
    return model


@contextlib.contextmanager
def quantization(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Switch fake quantisation on or off for the duration of a block."""
    layers = [m for m in model.modules() if isinstance(m, FAKE_QUANT)]
    before = [m.quantize for m in layers]
    for m in layers:
        m.quantize = enabled
    try:
        yield
    finally:
        for m, state in zip(layers, before):
            m.quantize = state


class QuantAwareObjective(SupervisedObjective):
    """The loss above for :func:`training.student.fit`; dev selection sees the fake-quantised model."""

    def __init__(self, model, encoder, data: EncodedPairs, reference_logits: torch.Tensor, targets: LabelTargets,
                 label_weight: float) -> None:
        super().__init__(model, encoder, data, targets.labels, targets.ratings, targets.loss_fn)
        self.reference, self.label_weight, self.kl = reference_logits, label_weight, ViewKLLoss()

    def loss(self, module, idx: list[int], device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs = batch_inputs(self.encoder, self.data, idx, device)
        target = self.reference[idx].to(device)
        with quantization(module, False):
            fp32 = module(**inputs).logits
        int8 = module(**inputs).logits
        parts = {"kl_int8": self.kl(int8, target), "kl_fp32": self.kl(fp32, target)}
        if self.label_weight:
            parts["label"] = self.loss_fn(int8, self.labels[idx].to(device), self.ratings[idx].to(device))
        loss = parts["kl_int8"] + parts["kl_fp32"] + self.label_weight * parts.get("label", 0.0)
        return loss, {k: v.detach() for k, v in parts.items()}


def quant_aware_config(checkpoint: str, given: dict) -> QuantAwareConfig:
    """Settings for fine-tuning ``checkpoint``: it decides how pairs are encoded (max length, text
    fields); the head keeps the encoder's small rate unless ``given`` says otherwise."""
    meta = read_student_meta(checkpoint)
    return QuantAwareConfig(**{"max_length": int(meta.get("max_length", 64)),
                               "text_fields": tuple(meta.get("text", {}).get("fields", ("title",))),
                               "head_lr": given.get("lr", QuantAwareConfig.lr), **given, "init": checkpoint})


def train_quant_aware(cfg: QuantAwareConfig, command: str | None = None) -> dict:
    """Fine-tune the checkpoint ``cfg.init`` as above; the dev-best (fake-quantised macro-F1) goes to ``<out>/best``."""
    run = start_run(cfg)
    pool = [p for p in load_pairs(cfg.data, cfg.train_split) if p.label is not None]
    rng = random.Random(cfg.seed)
    train_pairs = rng.sample(pool, min(cfg.limit_train or len(pool), len(pool)))
    calibration = encode_pairs(run.encoder, run.template, rng.sample(pool, min(cfg.calibration_pairs, len(pool))))
    train = encode_pairs(run.encoder, run.template, train_pairs)
    model = load_student(cfg.init)
    reference = torch.from_numpy(predict_logits(model, run.encoder, train, progress=True))
    ranges = calibrate_input_ranges(model, run.encoder, calibration)
    prepare_fake_quant(model, ranges)
    targets = human_label_targets(cfg, train_pairs)
    objective = QuantAwareObjective(model, run.encoder, train, reference, targets, cfg.label_weight)
    return fit(cfg, run, objective, targets.class_ratings,
               extra_meta={"quant_aware": {"from": cfg.init, "calibration_pairs": len(calibration.pairs),
                                           "label_weight": cfg.label_weight, "scheme": "static",
                                           "input_ranges": {k: list(v) for k, v in ranges.items()}}},
               training=training_record(cfg, len(train_pairs), "quantisation-aware fine-tuning (static INT8) on "
                                        "human labels, anchored to the checkpoint's own outputs", command))


def simulated_model(checkpoint: str | Path, meta: dict):
    """The quantisation-aware checkpoint as it was trained and selected: fake-quantised with its own
    ranges (the reference the INT8 graph is gated against)."""
    return prepare_fake_quant(load_student(checkpoint).eval(), meta["quant_aware"]["input_ranges"])


def onnx_input_ranges(meta: dict) -> dict[str, tuple[float, float]]:
    """The checkpoint's input ranges keyed by the exported graph's MatMul node names.

    ``torch.onnx`` names a projection ``bert.encoder.layer.0.attention.self.query`` as the node
    ``/bert/encoder/layer.0/attention/self/query/MatMul``; export maps each node to its input tensor,
    the key :func:`export.transforms.quantize_int8` takes.
    """
    return {"/" + re.sub(r"\.(?!\d)", "/", name) + "/MatMul": tuple(r)
            for name, r in meta["quant_aware"]["input_ranges"].items()}
