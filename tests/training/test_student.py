"""Student training on the tiny BERT: checkpoint format, report contents, determinism, the loss."""

from __future__ import annotations

import json

import pytest
import torch

from training.config import StudentTrainConfig
from training.losses.relevance import RelevanceLoss, class_weights_from_counts
from training.student import train_student


def test_checkpoint_is_a_plain_hf_folder_with_meta(tiny_checkpoint):
    files = {p.name for p in tiny_checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "student.json"} <= files
    meta = json.loads((tiny_checkpoint / "student.json").read_text())
    assert meta["labels"] == ["irrelevant", "partial", "exact"]
    assert meta["text"]["fields"] == ["title", "brand", "description"]
    assert set(meta["evaluation"]) == {"dev", "test"}
    for split in ("dev", "test"):
        m = meta["evaluation"][split]
        assert {"accuracy", "macro_f1", "f1", "confusion", "ndcg@10", "rmse"} <= set(m)


def test_training_lowers_the_training_loss(tiny_init, tiny_checkpoint, catalog_jsonl):
    from relevance.bundle.manifest import ServiceTextTemplate
    from relevance.data import load_pairs
    from relevance.encoding import PairEncoder
    from relevance.labels import label_index
    from training.student import encode_pairs, load_student, predict_logits

    encoder = PairEncoder.from_file(tiny_checkpoint / "tokenizer.json", 32)
    pairs = load_pairs(catalog_jsonl, "train")
    data = encode_pairs(encoder, ServiceTextTemplate(fields=("title", "brand", "description")), pairs)
    labels = torch.tensor([label_index(p.label) for p in pairs])

    def mean_ce(folder):
        logits = torch.from_numpy(predict_logits(load_student(folder), encoder, data))
        return torch.nn.functional.cross_entropy(logits, labels).item()

    assert mean_ce(tiny_checkpoint) < 0.9 * mean_ce(tiny_init)


def _tiny_config(init, data, out, seed):
    return StudentTrainConfig(
        data=str(data), out=str(out), init=str(init), train_split="train", dev_split="dev", test_split="",
        max_length=32, batch_size=16, epochs=1, lr=2e-3, head_lr=5e-3, evals_per_epoch=1, seed=seed, threads=1,
    )


def test_same_seed_same_result(tiny_init, catalog_jsonl, tmp_path):
    a = train_student(_tiny_config(tiny_init, catalog_jsonl, tmp_path / "a", seed=5))
    b = train_student(_tiny_config(tiny_init, catalog_jsonl, tmp_path / "b", seed=5))
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    assert a["dev"]["confusion"] == b["dev"]["confusion"]


def test_config_rejects_unknown_weighting():
    with pytest.raises(ValueError, match="class_weighting"):
        StudentTrainConfig(class_weighting="balanced", init="x")


def test_class_weights_upweight_the_rare_class():
    w = class_weights_from_counts([100, 900, 900], "sqrt_inverse")
    assert w.mean().item() == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(3.0)


def test_relevance_loss_formula():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    labels = torch.tensor([0, 2])
    ratings = torch.tensor([1.0, float("nan")])
    loss = RelevanceLoss(class_ratings=(1.0, 2.0, 3.0), rating_weight=0.5)(logits, labels, ratings)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    expected = logits[0].softmax(-1) @ torch.tensor([1.0, 2.0, 3.0])
    assert loss.item() == pytest.approx((ce + 0.5 * (expected - 1.0) ** 2).item(), rel=1e-6)


def test_a_student_with_fewer_layers_keeps_the_chosen_ones_and_reloads(tiny_checkpoint, catalog_jsonl, tmp_path):
    from training.student import load_student

    full = load_student(tiny_checkpoint)
    small = load_student(tiny_checkpoint, layers=(1,))
    assert small.config.num_hidden_layers == 1 and len(small.bert.encoder.layer) == 1
    assert torch.equal(small.bert.encoder.layer[0].attention.self.query.weight,
                       full.bert.encoder.layer[1].attention.self.query.weight)  # layer 1 of 2, not a fresh one
    assert torch.equal(small.classifier.weight, full.classifier.weight)
    with pytest.raises(ValueError, match="distinct indices"):
        load_student(tiny_checkpoint, layers=(0, 5))

    cfg = StudentTrainConfig(data=str(catalog_jsonl), out=str(tmp_path / "one-layer"), init=str(tiny_checkpoint),
                             layers=("1",), train_split="train", test_split="", text_fields=("title", "brand"),
                             max_length=32, batch_size=16, epochs=1, evals_per_epoch=1, threads=1)
    assert cfg.layers == (1,)  # the CLI gives strings
    train_student(cfg)
    reloaded = load_student(tmp_path / "one-layer" / "best")
    assert reloaded.config.num_hidden_layers == 1
    meta = json.loads((tmp_path / "one-layer" / "best" / "student.json").read_text())
    assert meta["config"]["layers"] == [1] and meta["training"]["init"] == str(tiny_checkpoint)
    # the same gated export takes it: a bundle of the smaller model, recording how it was made
    from export.config import ExportConfig
    from export.pipeline import export_bundle
    from relevance.bundle import load_bundle
    from tests.conftest import TINY_LIMITS

    bundle = load_bundle(export_bundle(ExportConfig(
        checkpoint=str(tmp_path / "one-layer" / "best"), out=str(tmp_path / "bundle"), data=str(catalog_jsonl),
        test_split="", **TINY_LIMITS)))
    assert bundle.manifest.training["init"] == str(tiny_checkpoint)
    assert bundle.manifest.training["from"]["method"] == "human labels"


def test_a_narrower_student_keeps_the_strongest_feed_forward_neurons_and_exports(
        tiny_checkpoint, catalog_jsonl, tmp_path):
    from training.student import load_student

    full = load_student(tiny_checkpoint)
    width = full.config.intermediate_size
    keep = width // 2
    narrow = load_student(tiny_checkpoint, ffn=keep)
    assert narrow.config.intermediate_size == keep
    for before, after in zip(full.bert.encoder.layer, narrow.bert.encoder.layer, strict=True):
        w_in, w_out = before.intermediate.dense.weight, before.output.dense.weight
        score = w_in.norm(dim=1) * w_out.norm(dim=0)
        kept = sorted(torch.topk(score, keep).indices.tolist())
        assert after.intermediate.dense.weight.shape == (keep, w_in.shape[1])
        assert torch.equal(after.intermediate.dense.weight, w_in[kept])
        assert torch.equal(after.output.dense.weight, w_out[:, kept])
        assert torch.equal(after.output.dense.bias, before.output.dense.bias)
    # keeping every neuron is the same model
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(load_student(tiny_checkpoint, ffn=width)(input_ids=ids).logits,
                              full(input_ids=ids).logits)
    with pytest.raises(ValueError, match="feed-forward neurons"):
        load_student(tiny_checkpoint, ffn=width + 1)

    cfg = StudentTrainConfig(data=str(catalog_jsonl), out=str(tmp_path / "narrow"), init=str(tiny_checkpoint),
                             layers=(1,), ffn=keep, train_split="train", test_split="", text_fields=("title",),
                             max_length=32, batch_size=16, epochs=1, evals_per_epoch=1, threads=1)
    train_student(cfg)
    reloaded = load_student(tmp_path / "narrow" / "best")
    assert reloaded.config.intermediate_size == keep and reloaded.config.num_hidden_layers == 1
    meta = json.loads((tmp_path / "narrow" / "best" / "student.json").read_text())
    assert meta["training"]["ffn"] == keep and meta["training"]["layers"] == [1]
    from export.config import ExportConfig
    from export.pipeline import export_bundle
    from relevance.bundle import load_bundle
    from tests.conftest import TINY_LIMITS

    bundle = load_bundle(export_bundle(ExportConfig(
        checkpoint=str(tmp_path / "narrow" / "best"), out=str(tmp_path / "bundle"), data=str(catalog_jsonl),
        test_split="", **TINY_LIMITS)))
    assert bundle.manifest.training["ffn"] == keep
