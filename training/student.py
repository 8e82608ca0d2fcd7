"""Fine-tune the 6-layer BERT student as a 3-class (query, service) pair classifier.

Runs the same on one CPU and under ``accelerate launch`` on several GPUs: the loop goes through
:class:`accelerate.Accelerator`, batches are built per process from a seeded generator, and only
the main process evaluates and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from relevance.bundle.manifest import ServiceTextTemplate
from relevance.data import Pair, load_pairs
from relevance.encoding import PairEncoder
from relevance.labels import LABELS, label_index
from relevance.metrics import evaluate, format_report
from training.batching import length_bucketed_batches, sorted_batches, to_tensors
from training.config import StudentTrainConfig
from training.losses.relevance import RelevanceLoss, class_weights_from_counts

STUDENT_META = "student.json"


@dataclass
class EncodedPairs:
    pairs: list[Pair]
    examples: list[tuple[list[int], list[int]]]

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids, _ in self.examples]


def encode_pairs(encoder: PairEncoder, template: ServiceTextTemplate, pairs: list[Pair]) -> EncodedPairs:
    texts = [template.render(p.service) for p in pairs]
    return EncodedPairs(pairs, encoder.encode([p.query for p in pairs], texts))


def load_student(path: str | Path, num_labels: int = len(LABELS)):
    """An HF BERT sequence classifier from ``path`` (a new 3-way head if the checkpoint has none)."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        str(path),
        num_labels=num_labels,
        id2label=dict(enumerate(LABELS)),
        label2id={lbl: i for i, lbl in enumerate(LABELS)},
    )


@torch.no_grad()
def predict_logits(model, encoder: PairEncoder, data: EncodedPairs, batch_size: int = 128, progress: bool = False) -> np.ndarray:
    """Logits in the data's order, computed on length-sorted batches."""
    model.eval()
    device = next(model.parameters()).device
    out = np.zeros((len(data.examples), model.config.num_labels), dtype=np.float32)
    batches = list(sorted_batches(data.lengths, batch_size))
    for idx in tqdm(batches, desc="predict", disable=not progress, leave=False):
        inputs = to_tensors(encoder.pad([data.examples[i] for i in idx]))
        logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits
        out[idx] = logits.float().cpu().numpy()
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def class_mean_ratings(pairs: list[Pair]) -> tuple[float, ...]:
    """Mean human rating of each class in ``pairs`` (defaults where a class has no rated pair)."""
    from relevance.labels import DEFAULT_RATINGS

    means = []
    for i, lbl in enumerate(LABELS):
        rs = [p.rating for p in pairs if p.label == lbl and p.rating is not None]
        means.append(round(float(np.mean(rs)), 4) if rs else DEFAULT_RATINGS[i])
    return tuple(means)


def evaluate_model(model, encoder, data: EncodedPairs, class_ratings) -> dict:
    probs = softmax(predict_logits(model, encoder, data))
    pairs = data.pairs
    return evaluate(
        probs,
        [p.label for p in pairs],
        [p.query for p in pairs],
        [p.rating for p in pairs],
        class_ratings=class_ratings,
    )


def train_student(cfg: StudentTrainConfig) -> dict:
    """Train, select the dev-best checkpoint into ``<out>/best`` and report dev/test metrics."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    accelerator = Accelerator()
    set_seed(cfg.seed)
    out = cfg.out_path
    best_dir = out / "best"
    tokenizer = AutoTokenizer.from_pretrained(cfg.init)
    encoder = PairEncoder(tokenizer.backend_tokenizer, cfg.max_length)
    template = ServiceTextTemplate(fields=cfg.text_fields)

    train_pairs = [p for p in load_pairs(cfg.data, cfg.train_split) if p.label is not None]
    if cfg.limit_train:
        train_pairs = train_pairs[: cfg.limit_train]
    dev = encode_pairs(encoder, template, load_pairs(cfg.data, cfg.dev_split))
    train = encode_pairs(encoder, template, train_pairs)
    class_ratings = class_mean_ratings(train_pairs)
    counts = [sum(p.label == lbl for p in train_pairs) for lbl in LABELS]

    model = load_student(cfg.init)
    head = [p for n, p in model.named_parameters() if n.startswith(("classifier", "bert.pooler"))]
    body = [p for n, p in model.named_parameters() if not n.startswith(("classifier", "bert.pooler"))]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}], weight_decay=cfg.weight_decay
    )
    rng = random.Random(cfg.seed)
    steps_per_epoch = math.ceil(len(train_pairs) / (cfg.batch_size * accelerator.num_processes))
    total_steps = max(1, int(steps_per_epoch * cfg.epochs))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    loss_fn = RelevanceLoss(class_weights_from_counts(counts, cfg.class_weighting), class_ratings, cfg.rating_loss_weight)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    loss_fn = loss_fn.to(accelerator.device)
    eval_every = max(1, steps_per_epoch // max(1, cfg.evals_per_epoch))

    labels_all = torch.tensor([label_index(p.label) for p in train_pairs])
    ratings_all = torch.tensor([p.rating if p.rating is not None else float("nan") for p in train_pairs])
    history: list[dict] = []
    best = {"macro_f1": -1.0}
    step = 0
    started = time.time()
    bar = tqdm(total=total_steps, desc="train", disable=not accelerator.is_main_process)
    while step < total_steps:
        batches = length_bucketed_batches(train.lengths, cfg.batch_size, rng)
        # every process draws the same order, then takes its own slice of batches
        batches = batches[accelerator.process_index :: accelerator.num_processes]
        model.train()
        for idx in batches:
            if step >= total_steps:
                break
            inputs = to_tensors(encoder.pad([train.examples[i] for i in idx]))
            inputs = {k: v.to(accelerator.device) for k, v in inputs.items()}
            logits = model(**inputs).logits
            loss = loss_fn(logits, labels_all[idx].to(accelerator.device), ratings_all[idx].to(accelerator.device))
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % eval_every == 0 or step == total_steps:
                if accelerator.is_main_process:
                    m = evaluate_model(accelerator.unwrap_model(model), encoder, dev, class_ratings)
                    history.append({"step": step, "epoch": step / steps_per_epoch, "loss": loss.item(),
                                    "dev_macro_f1": m["macro_f1"], "dev_rmse": m.get("rmse"),
                                    "elapsed_s": time.time() - started})
                    bar.write(f"step {step}: dev macro-F1 {m['macro_f1']:.4f} acc {m['accuracy']:.4f} "
                              f"rmse {m.get('rmse', float('nan')):.4f}")
                    if m["macro_f1"] > best["macro_f1"]:
                        best = {**m, "step": step}
                        accelerator.unwrap_model(model).save_pretrained(best_dir, safe_serialization=True)
                        tokenizer.save_pretrained(best_dir)
                accelerator.wait_for_everyone()
                model.train()
    bar.close()
    train_seconds = time.time() - started
    report: dict = {"config": cfg.to_json(), "history": history, "train_seconds": round(train_seconds, 1)}
    if accelerator.is_main_process:
        final = load_student(best_dir).to(accelerator.device)
        report["dev"] = best
        if cfg.test_split:
            test = encode_pairs(encoder, template, load_pairs(cfg.data, cfg.test_split))
            report["test"] = evaluate_model(final, encoder, test, class_ratings)
        meta = {
            "labels": list(LABELS),
            "class_ratings": list(class_ratings),
            "max_length": cfg.max_length,
            "text": template.model_dump(mode="json"),
            "evaluation": {k: report[k] for k in ("dev", "test") if k in report},
            "train_seconds": report["train_seconds"],
            "config": cfg.to_json(),
        }
        (best_dir / STUDENT_META).write_text(json.dumps(meta, indent=2))
        (out / "report.json").write_text(json.dumps(report, indent=2))
        for split in ("dev", "test"):
            if split in report:
                print(format_report(report[split], f"{split} ({cfg.data})"))
    return report
