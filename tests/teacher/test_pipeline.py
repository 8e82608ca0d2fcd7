"""The teacher steps end to end on a tiny random causal LM: DAPT -> SFT -> reward sampling -> DPO ->
annotation and evaluation (library and CLI), plus the seed sources and the label-probability paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relevance.data import Pair, load_pairs
from relevance.labels import LABELS
from tests.teacher.conftest import TEXT_FIELDS
from tests.teacher.fakes import good_chain

pytest.importorskip("trl")


def _spec(folder: Path) -> dict:
    return json.loads((Path(folder) / "teacher.json").read_text())


def test_dapt_corpus_is_text_only_and_trains_an_adapter(dapt_teacher, catalog_jsonl):
    from teacher.steps.dapt import dapt_documents

    docs = dapt_documents(load_pairs(catalog_jsonl, "train"), TEXT_FIELDS)
    assert docs and all(d.startswith("Search: ") and "\nProduct: " in d for d in docs)
    assert not any(lbl in d for d in docs for lbl in LABELS)  # labels never enter the corpus
    spec, run = _spec(dapt_teacher), json.loads((dapt_teacher / "run.json").read_text())
    assert spec["steps"] == ["dapt"] and spec["adapters"] == ["adapter"]
    assert (dapt_teacher / "adapter" / "adapter_config.json").is_file()
    assert run["optimizer_steps"] == 6 and run["corpus"]["splits"] == ["train"] and run["last_loss"] is not None


def test_a_bf16_step_leaves_no_mixed_precision_behind(dapt_teacher):
    """DAPT trained under bf16 autocast (the default); a later ``Accelerator()`` of this process, as the
    student's and CRSD's loops create, must run in fp32 (it used to inherit bf16 and fail on fp32 inputs)."""
    import os

    from accelerate import Accelerator

    assert json.loads((dapt_teacher / "run.json").read_text())["config"]["bf16"] is True
    assert os.environ.get("ACCELERATE_MIXED_PRECISION") in (None, "no")
    accelerator = Accelerator()
    assert accelerator.mixed_precision == "no" and not accelerator.native_amp


def test_dapt_lowers_held_out_perplexity(dapt_teacher, tiny_lm, catalog_jsonl, tmp_path):
    from typer.testing import CliRunner

    from relevance.cli import app
    from teacher.steps.dapt import held_out_perplexity

    base = held_out_perplexity(str(tiny_lm), str(catalog_jsonl), "test", TEXT_FIELDS, max_tokens=1500, block_size=64)
    out = tmp_path / "ppl.json"
    result = CliRunner().invoke(app, ["teacher", "perplexity", "--teacher", str(dapt_teacher), "--data",
                                      str(catalog_jsonl), "--split", "test", "--text-fields", ",".join(TEXT_FIELDS),
                                      "--max-tokens", "1500", "--block-size", "64", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    adapted = json.loads(out.read_text())
    assert adapted["tokens"] == base["tokens"] == base["blocks"] * 63 > 0  # the same held-out blocks
    assert 1.0 < adapted["perplexity"] < base["perplexity"]  # six DAPT steps on train text already transfer
    assert "perplexity" in result.output


def test_sft_on_program_seeds(sft_teacher, catalog_jsonl):
    from collections import Counter

    spec, run = _spec(sft_teacher), json.loads((sft_teacher / "run.json").read_text())
    assert spec["steps"] == ["dapt", "sft"] and spec["adapters"][-1] == "adapter"
    assert run["data"]["sources"] == {"program:attributes-v1": 240}
    available = Counter(p.label for p in load_pairs(catalog_jsonl, "train"))
    drawn = run["data"]["labels"]
    assert sum(drawn.values()) == 240  # class-balanced: 80 each, a short class gives all it has
    assert all(drawn[lbl] >= min(80, available[lbl]) for lbl in LABELS)
    assert run["last_loss"] < run["first_loss"]


def test_merged_teacher_and_label_probability_paths_agree(sft_teacher, tiny_lm, catalog_jsonl):
    import torch

    from teacher.backends.local import LocalBackend
    from teacher.chains.prompts import PromptTemplate
    from teacher.model import load_teacher

    model, tok, spec = load_teacher(sft_teacher)
    base, _, _ = load_teacher(tiny_lm)
    ids = torch.tensor([tok.encode("Search: drill", add_special_tokens=False)])
    assert not torch.allclose(model(ids).logits, base(ids).logits)  # both adapters were merged
    backend = LocalBackend(model, tok, spec.name, spec.version, PromptTemplate(text_fields=TEXT_FIELDS))
    pair = load_pairs(catalog_jsonl, "test")[0]
    prompt, chain = backend.prompts([pair])[0], good_chain("partial")
    gen = tok.encode(chain, add_special_tokens=False)
    step = backend._label_step(gen)
    assert step is not None and tok.decode(gen[step:]).strip() == "partial"
    full = tok(prompt + tok.decode(gen), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logits = model(**full).logits[0]
    n_prompt = full["input_ids"].shape[1] - len(gen)
    row = logits[n_prompt + step - 1]
    teacher_forced = torch.softmax(torch.stack([row[t] for t in backend.labels.lookup[gen[step]].values()]), 0)
    forward = backend.label_probs_after([prompt + chain[: chain.rindex(":") + 1]])[0]
    assert [forward[k] for k in backend.labels.lookup[gen[step]]] == pytest.approx(teacher_forced.tolist(), abs=1e-4)


def test_bootstrap_seeds_rejection_then_rationalisation():
    from teacher.chains.seeds import RATIONALISED, REJECTION
    from teacher.steps.bootstrap import bootstrap_seeds

    class Fake:
        name, version = "fake", "0"

        def complete(self, pairs, *, sample=False, n=1, hints=None, want_probs=True):
            from teacher.backends.base import Completion

            if hints:  # rationalisation: follows the hint, except for pair "3"
                return [[Completion(good_chain(h) if p.id != "3" else "Label: maybe")] for p, h in zip(pairs, hints)]
            return [[Completion("garbage"), Completion(good_chain("exact"))] for _ in pairs]

    pairs = [Pair(id=str(i), query="q", service={"title": "t"}, label=lbl)
             for i, lbl in enumerate(["exact", "partial", "irrelevant", "partial"])]
    seeds, stats = bootstrap_seeds(Fake(), pairs, k=2)
    by_id = {s.id: s for s in seeds}
    assert by_id["0"].source == REJECTION and by_id["1"].source == RATIONALISED
    assert "3" not in by_id and stats["dropped"] == 1
    assert all(s.chain.endswith(f"Label: {s.label}") for s in seeds)
    # a stronger seed-writer LLM's chains never carry the teacher's tag
    written, _ = bootstrap_seeds(Fake(), pairs, k=0, writer="llm:qwen")
    assert {s.source for s in written} == {"llm:qwen:rationalised"} and len(written) == 3


def test_bootstrap_and_sft_from_a_seeds_file(tmp_path, sft_teacher, catalog_jsonl):
    from teacher.backends.local import LocalBackend
    from teacher.chains.prompts import PromptTemplate
    from teacher.chains.seeds import SeedChain, read_seeds, write_seeds
    from teacher.settings import GenerationSettings
    from teacher.steps.bootstrap import bootstrap_seeds
    from teacher.steps.sft import TeacherSFTConfig, select_seeds

    backend = LocalBackend.from_teacher(str(sft_teacher), PromptTemplate(text_fields=TEXT_FIELDS),
                                        GenerationSettings(max_new_tokens=64, batch_size=8))
    pairs = load_pairs(catalog_jsonl, "train")[:6]
    seeds, stats = bootstrap_seeds(backend, pairs, k=2)
    assert stats["pairs"] == 6 and all(s.chain.endswith(f"Label: {s.label}") for s in seeds)
    seeds.append(SeedChain(pairs[0].id, good_chain(pairs[0].label), "teacher:rejection", pairs[0].label, "exact"))
    write_seeds(seeds, tmp_path / "seeds.jsonl")
    assert read_seeds(tmp_path / "seeds.jsonl")[-1] == seeds[-1]
    cfg = TeacherSFTConfig(data=str(catalog_jsonl), split="train", seeds=str(tmp_path / "seeds.jsonl"),
                           n_examples=10, class_balance=False)
    chosen, chosen_seeds = select_seeds(cfg, load_pairs(catalog_jsonl, "train"))
    assert {p.id for p in chosen} <= {s.id for s in seeds} and all(s.label == p.label for p, s in zip(chosen, chosen_seeds))
    # program chains for exactly the pairs another source covered: a same-pairs comparison of seed sources
    same = TeacherSFTConfig(data=str(catalog_jsonl), split="train", seeds="attributes", n_examples=0,
                            same_pairs_as=str(tmp_path / "seeds.jsonl"))
    program_pairs, program_seeds = select_seeds(same, load_pairs(catalog_jsonl, "train"))
    assert {p.id for p in program_pairs} == {s.id for s in seeds if s.label == next(
        p.label for p in load_pairs(catalog_jsonl, "train") if p.id == s.id)}
    assert all(s.source.startswith("program:") for s in program_seeds)


def test_preference_pairs_from_scored_samples():
    from teacher.steps.dpo import preference_pairs

    def s(text, total, fmt=1.0):
        return {"text": text, "reward": {"total": total, "format": fmt}}

    records = [
        {"id": "a", "samples": [s("good", 0.9), s("bad", 0.1), s("good", 0.9), s("mid", 0.5)]},
        {"id": "b", "samples": [s("x", 0.5), s("y", 0.45)]},  # within the margin
        {"id": "c", "samples": [s("unparsed", 0.3, fmt=0.0), s("worse", 0.0)]},  # best does not parse
    ]
    assert preference_pairs(records, min_margin=0.15) == [
        {"id": "a", "chosen": "good", "rejected": "bad", "margin": 0.8}]
    two = preference_pairs(records, min_margin=0.15, pairs_per_prompt=2)
    assert len(two) == 1  # "a" has 3 distinct outputs: one pair only


def test_label_contrast_pairs_prefer_the_human_label_with_equal_counts_per_class():
    from teacher.steps.dpo import label_contrast_pairs

    def s(text, label_ok, total):
        return {"text": text, "reward": {"total": total, "label": 1.0 if label_ok else 0.0, "format": 1.0}}

    records = [
        {"id": "e1", "label": "exact", "samples": [s("right", True, 0.9), s("wrong", False, 0.3), s("w2", False, 0.5)]},
        {"id": "e2", "label": "exact", "samples": [s("right", True, 0.8), s("wrong", False, 0.2)]},
        {"id": "p1", "label": "partial", "samples": [s("right", True, 0.7), s("wrong", False, 0.1)]},
        {"id": "p2", "label": "partial", "samples": [s("a", False, 0.9), s("b", False, 0.1)]},  # no correct sample
        {"id": "i1", "label": "irrelevant", "samples": [s("right", True, 0.6), s("wrong", False, 0.55)]},  # < margin
    ]
    pairs = label_contrast_pairs(records)
    # irrelevant has no pair above the margin: the classes that do get one pair each (partial has only one)
    assert len(pairs) == 2 and "p1" in {p["id"] for p in pairs} and "i1" not in {p["id"] for p in pairs}
    records[-1]["samples"][1]["reward"]["total"] = 0.1
    pairs = label_contrast_pairs(records)
    by_id = {p["id"]: p for p in pairs}
    assert len(pairs) == 3 and {"p1", "i1"} <= set(by_id) and len({"e1", "e2"} & set(by_id)) == 1
    assert all(p["chosen"] == "right" for p in pairs)
    assert by_id.get("e1", {"rejected": "wrong"})["rejected"] == "wrong"  # the worst wrong-label output


def test_dpo_rescores_stored_samples_with_the_current_reward():
    from teacher.chains.reward import RewardWeights
    from teacher.steps.reward_sampling import rescore

    pair = Pair(id="a", query="q", service={"title": "t"}, label="exact")
    stale = [{"id": "a", "label": "exact", "samples": [{"text": good_chain("partial"), "reward": {"total": 0.9}}]},
             {"id": "gone", "label": "exact", "samples": []}]
    (record,) = rescore(stale, [pair])
    assert record["samples"][0]["reward"]["label"] == 0.0  # exact-match: 'partial' is wrong for an 'exact' pair
    (ordinal,) = rescore(stale, [pair], RewardWeights(label_scoring="ordinal"))
    assert ordinal["samples"][0]["reward"]["label"] == 0.5


@pytest.fixture(scope="module")
def dpo_teacher(tmp_path_factory, sft_teacher, catalog_jsonl):
    """Reward sampling with the SFT teacher, then DPO on hand-made chosen/rejected outputs."""
    from teacher.settings import GenerationSettings, LoraSettings
    from teacher.steps.dpo import TeacherDPOConfig, train_dpo
    from teacher.steps.reward_sampling import (
        RewardSampleConfig,
        read_samples,
        run_reward_sampling,
        write_samples,
    )

    tmp = tmp_path_factory.mktemp("dpo")
    sampling = RewardSampleConfig(teacher=str(sft_teacher), data=str(catalog_jsonl), out=str(tmp / "samples.jsonl"),
                                  split="train", n_pairs=6, samples_per_pair=2, text_fields=TEXT_FIELDS,
                                  generation=GenerationSettings(max_new_tokens=64, batch_size=12), dtype="float32")
    records, summary = run_reward_sampling(sampling)
    assert len(records) == 6 and all(len(r["samples"]) == 2 for r in records)
    assert summary["samples"] == 12 and 0.0 <= summary["total"] <= 1.0
    assert read_samples(tmp / "samples.jsonl") == records
    # whatever the tiny model sampled, add one well-formed correct chain per pair so DPO has pairs
    from teacher.chains.reward import score_output

    by_id = {p.id: p for p in load_pairs(catalog_jsonl, "train")}
    for r in records:
        text = good_chain(r["label"])
        r["samples"].append({"text": text, "reward": score_output(text, by_id[r["id"]]).to_json()})
    write_samples(records, tmp / "with-good.jsonl")
    cfg = TeacherDPOConfig(teacher=str(sft_teacher), data=str(catalog_jsonl), out=str(tmp / "teacher"),
                           samples=str(tmp / "with-good.jsonl"), sampling=sampling, text_fields=TEXT_FIELDS,
                           batch_size=4, max_steps=3, lr=1e-3, lora=LoraSettings(r=4, alpha=8), logging_steps=1,
                           max_length=320, threads=1)
    return train_dpo(cfg)


def test_dpo_adds_a_third_adapter(dpo_teacher):
    spec, run = _spec(dpo_teacher), json.loads((dpo_teacher / "run.json").read_text())
    assert spec["steps"] == ["dapt", "sft", "dpo"] and len(spec["adapters"]) == 3
    assert run["preference_pairs"] >= 1 and run["optimizer_steps"] == 3


def test_annotate_and_resume_with_the_trained_teacher(tmp_path, dpo_teacher, catalog_jsonl):
    from relevance.annotations.reader import read_records
    from teacher.settings import GenerationSettings
    from teacher.steps.annotate import AnnotateConfig, annotate

    cfg = AnnotateConfig(teacher=str(dpo_teacher), data=str(catalog_jsonl), split="test", shard="0/2", limit=10,
                         out=str(tmp_path / "ann.jsonl"), retries=1, text_fields=TEXT_FIELDS, dtype="float32",
                         generation=GenerationSettings(max_new_tokens=64, batch_size=10))
    first = annotate(cfg, progress=False)
    records = read_records(cfg.out)
    assert first.ok + first.failed == 10 == len(records) == len({r["id"] for r in records})
    for r in records:
        t = r["teacher"]
        assert t["version"] == _spec(dpo_teacher)["version"] and t["name"] == "tiny-lm0"
        if r["status"] == "ok":
            assert t["label"] in LABELS and (t["probs"] is None or sum(t["probs"].values()) == pytest.approx(1))
        else:
            assert "label" not in t and t["error"]
    again = annotate(cfg, progress=False)
    assert again.skipped == 10 and again.ok + again.failed == 0


def test_eval_command(tmp_path, sft_teacher, catalog_jsonl):
    from typer.testing import CliRunner

    from relevance.cli import app

    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, [
        "teacher", "eval", "--teacher", str(sft_teacher), "--data", str(catalog_jsonl), "--split", "test", "--n-pairs", "12",
        "--balanced", "--text-fields", ",".join(TEXT_FIELDS), "--max-new-tokens", "64", "--batch-size", "12",
        "--dtype", "float32", "--out", str(out), "--outputs", str(tmp_path / "outputs.jsonl")])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    outputs = [json.loads(line) for line in (tmp_path / "outputs.jsonl").read_text().splitlines()]
    assert len(outputs) == 12 and set(outputs[0]) == {"id", "output", "probs", "error"}
    assert metrics["n"] == 12 and 0 <= metrics["parse_failure_rate"] <= 1
    assert set(metrics["f1"]) == set(LABELS) and set(metrics["reward"]) >= {"label", "consistency", "faithfulness",
                                                                           "format", "total"}
    assert sum(metrics["predicted"].values()) == 12 and "macro-F1" in result.output


def test_evaluate_outputs_counts_failures_as_wrong():
    from teacher.backends.base import Completion
    from teacher.steps.evaluate import evaluate_outputs

    pairs = [Pair(id=str(i), query=f"q{i % 2}", service={"title": "t"}, label=lbl)
             for i, lbl in enumerate(["exact", "exact", "partial", "irrelevant"])]
    outs = [Completion(good_chain("exact"), {"irrelevant": 0.1, "partial": 0.2, "exact": 0.7}),
            Completion("truncated"), Completion(good_chain("partial")), Completion(good_chain("partial"))]
    m = evaluate_outputs(pairs, outs)
    assert m["accuracy"] == 0.5 and m["parse_failure_rate"] == 0.25
    assert m["f1"]["exact"] == pytest.approx(2 / 3)  # precision 1, recall 1/2 (the failure is a miss)
    assert m["f1"]["partial"] == pytest.approx(2 / 3) and m["f1"]["irrelevant"] == 0.0
    assert m["predicted"] == {"exact": 1, "failed": 1, "partial": 2}
    assert m["parsed_only"]["n"] == 3 and m["parsed_only"]["accuracy"] == pytest.approx(2 / 3)
    assert m["probs_available"] == pytest.approx(1 / 3)
