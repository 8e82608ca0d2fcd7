"""Fine-tune the 6-layer BERT student as a 3-class (query, service) pair classifier.

Runs the same on one CPU and under ``accelerate launch`` on several GPUs: the loop goes through
:class:`accelerate.Accelerator`, batches are built per process from a seeded generator, and only
the main process evaluates and writes checkpoints.

The loop itself (:func:`fit`) is shared: a trainer builds an :class:`Objective` (what is trained and
the loss of one batch) and hands it over. :func:`train_student` is the plain student on human
labels; :mod:`training.crsd` plugs the two-view CRSD objective into the same loop.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from relevance.bundle.manifest import ServiceTextTemplate
from relevance.data import Pair, load_pairs
from relevance.encoding import PairEncoder
from relevance.labels import DEFAULT_RATINGS, LABELS, label_index
from relevance.metrics import evaluate, format_report, softmax
from training.batching import length_bucketed_batches, sorted_batches, to_tensors
from training.config import StudentTrainConfig
from training.losses.relevance import RelevanceLoss, class_weights_from_counts

STUDENT_META = "student.json"


def read_student_meta(checkpoint: str | Path) -> dict:
    """A checkpoint's ``student.json`` (labels, max length, service text, evaluation, ...); ``{}`` if absent."""
    path = Path(checkpoint) / STUDENT_META
    return json.loads(path.read_text()) if path.is_file() else {}


@dataclass
class EncodedPairs:
    pairs: list[Pair]
    examples: list[tuple[list[int], list[int]]]

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids, _ in self.examples]


def encode_pairs(
    encoder: PairEncoder, template: ServiceTextTemplate, pairs: list[Pair], reasonings: list[str] | None = None
) -> EncodedPairs:
    """The standard view of each pair, or with ``reasonings`` the reasoning-augmented view (CRSD)."""
    texts = [template.render(p.service) for p in pairs]
    return EncodedPairs(pairs, encoder.encode([p.query for p in pairs], texts, reasonings))


def load_student(path: str | Path, num_labels: int = len(LABELS), layers: tuple[int, ...] = (), ffn: int = 0):
    """An HF BERT sequence classifier from ``path`` (a new 3-way head if the checkpoint has none).

    ``layers`` keeps only those encoder layers, in the order given (``(0, 2, 4)``: a 3-layer student
    that starts from every other layer of a 6-layer one); embeddings, pooler and head are kept.
    ``ffn`` then keeps that many feed-forward neurons per layer (:func:`prune_ffn`). The result saves
    and reloads as a plain model of ``len(layers)`` layers and ``ffn`` intermediate size.
    """
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        str(path),
        num_labels=num_labels,
        id2label=dict(enumerate(LABELS)),
        label2id={lbl: i for i, lbl in enumerate(LABELS)},
    )
    if layers:
        encoder = model.base_model.encoder
        have = len(encoder.layer)
        if not all(0 <= i < have for i in layers) or len(set(layers)) != len(layers):
            raise ValueError(f"layers {layers} must be distinct indices of the model's {have} layers")
        encoder.layer = torch.nn.ModuleList(encoder.layer[i] for i in layers)
        model.config.num_hidden_layers = len(layers)
    if ffn:
        prune_ffn(model, ffn)
    return model


@torch.no_grad()
def prune_ffn(model, keep: int) -> None:
    """Keep the ``keep`` feed-forward neurons of each encoder layer with the largest
    ``|w_in| * |w_out|`` (the norms of the neuron's input row and output column): a neuron's
    contribution to the layer's output scales with both, and the ranking needs no data. The two
    Linear layers are replaced by their kept slices, and ``config.intermediate_size`` follows, so
    the model saves, reloads and exports as an ordinary BERT of that width."""
    have = model.config.intermediate_size
    if not 0 < keep <= have:
        raise ValueError(f"ffn {keep} must be between 1 and the model's {have} feed-forward neurons")
    if keep == have:
        return
    for layer in model.base_model.encoder.layer:
        w_in, w_out = layer.intermediate.dense, layer.output.dense
        score = w_in.weight.norm(dim=1) * w_out.weight.norm(dim=0)
        kept = torch.topk(score, keep).indices.sort().values
        sliced_in = torch.nn.Linear(w_in.in_features, keep, dtype=w_in.weight.dtype)
        sliced_in.weight.copy_(w_in.weight[kept])
        sliced_in.bias.copy_(w_in.bias[kept])
        sliced_out = torch.nn.Linear(keep, w_out.out_features, dtype=w_out.weight.dtype)
        sliced_out.weight.copy_(w_out.weight[:, kept])
        sliced_out.bias.copy_(w_out.bias)
        layer.intermediate.dense, layer.output.dense = sliced_in, sliced_out
    model.config.intermediate_size = keep


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



def class_mean_ratings(pairs: list[Pair]) -> tuple[float, ...]:
    """Mean human rating of each class in ``pairs`` (defaults where a class has no rated pair)."""
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


def batch_inputs(encoder: PairEncoder, data: EncodedPairs, idx: list[int], device) -> dict[str, torch.Tensor]:
    """Padded model inputs of the examples ``idx`` of ``data``, on ``device``."""
    return {k: v.to(device) for k, v in to_tensors(encoder.pad([data.examples[i] for i in idx])).items()}


class Objective(Protocol):
    """What one training run optimises; :func:`fit` runs the same loop for every objective.

    ``module`` is what the optimizer trains and accelerate prepares (the classifier, or the classifier
    plus train-only parts such as a projection head); ``classifier(module)`` is the plain sequence
    classifier inside it, the only part evaluated and saved; ``loss`` returns one batch's loss and
    named parts for the log.
    """

    module: torch.nn.Module

    @property
    def lengths(self) -> list[int]: ...

    def classifier(self, module): ...

    def to(self, device) -> "Objective": ...

    def loss(self, module, idx: list[int], device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


class SupervisedObjective:
    """The plain student's objective: one standard view per pair, :class:`RelevanceLoss` on its logits."""

    def __init__(self, model, encoder: PairEncoder, data: EncodedPairs, labels: torch.Tensor,
                 ratings: torch.Tensor, loss_fn: RelevanceLoss) -> None:
        self.module, self.encoder, self.data = model, encoder, data
        self.labels, self.ratings, self.loss_fn = labels, ratings, loss_fn

    @property
    def lengths(self) -> list[int]:
        return self.data.lengths

    @staticmethod
    def classifier(module):
        return module

    def to(self, device) -> "SupervisedObjective":
        self.loss_fn = self.loss_fn.to(device)
        return self

    def loss(self, module, idx: list[int], device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = module(**batch_inputs(self.encoder, self.data, idx, device)).logits
        return self.loss_fn(logits, self.labels[idx].to(device), self.ratings[idx].to(device)), {}


@dataclass
class RunContext:
    """What every trainer sets up the same way before building its objective."""

    accelerator: object
    tokenizer: object
    encoder: PairEncoder
    template: ServiceTextTemplate


def start_run(cfg: StudentTrainConfig) -> RunContext:
    """Threads, accelerator, seed, tokenizer, standard-view encoder and service template of a run."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import AutoTokenizer

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    accelerator = Accelerator()
    set_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(cfg.init)
    encoder = PairEncoder(tokenizer.backend_tokenizer, cfg.max_length)
    return RunContext(accelerator, tokenizer, encoder, ServiceTextTemplate(fields=cfg.text_fields))


def train_student(cfg: StudentTrainConfig, command: str | None = None) -> dict:
    """Train, select the dev-best checkpoint into ``<out>/best`` and report dev/test metrics."""
    run = start_run(cfg)
    train_pairs = [p for p in load_pairs(cfg.data, cfg.train_split) if p.label is not None]
    if cfg.limit_train:
        train_pairs = train_pairs[: cfg.limit_train]
    train = encode_pairs(run.encoder, run.template, train_pairs)
    targets = human_label_targets(cfg, train_pairs)
    objective = SupervisedObjective(load_student(cfg.init, layers=cfg.layers, ffn=cfg.ffn), run.encoder, train, targets.labels, targets.ratings,
                                    targets.loss_fn)
    return fit(cfg, run, objective, targets.class_ratings,
               training=training_record(cfg, len(train_pairs), "human labels", command))


@dataclass
class LabelTargets:
    """Human-label training targets of a list of pairs and the loss that uses them."""

    class_ratings: tuple[float, ...]
    loss_fn: RelevanceLoss
    labels: torch.Tensor
    ratings: torch.Tensor  # NaN where a pair has no rating


def human_label_targets(cfg: StudentTrainConfig, pairs: list[Pair]) -> LabelTargets:
    """Labels, ratings and the class-weighted :class:`RelevanceLoss` of ``pairs`` under ``cfg``."""
    class_ratings = class_mean_ratings(pairs)
    counts = [sum(p.label == lbl for p in pairs) for lbl in LABELS]
    loss_fn = RelevanceLoss(class_weights_from_counts(counts, cfg.class_weighting), class_ratings, cfg.rating_loss_weight)
    return LabelTargets(class_ratings, loss_fn, torch.tensor([label_index(p.label) for p in pairs]),
                        torch.tensor([p.rating if p.rating is not None else float("nan") for p in pairs]))


def _optimizer(cfg: StudentTrainConfig, module: torch.nn.Module, classifier) -> torch.optim.Optimizer:
    """AdamW: the encoder at ``lr``; the new head, the pooler and any train-only part at ``head_lr``."""
    is_head = ("classifier", "bert.pooler")
    body = [p for n, p in classifier.named_parameters() if not n.startswith(is_head)]
    head = [p for n, p in classifier.named_parameters() if n.startswith(is_head)]
    own = {id(p) for p in classifier.parameters()}
    head += [p for p in module.parameters() if id(p) not in own]
    return torch.optim.AdamW(
        [{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}], weight_decay=cfg.weight_decay
    )


def training_record(cfg: StudentTrainConfig, n_train: int, method: str, command: str | None = None,
                    **details) -> dict:
    """How a checkpoint was trained (``student.json``'s ``training``, which export copies into ``bundle.json``).

    ``method`` says what the model learnt from; ``details`` add what is specific to it (teacher,
    annotations, preset). When the run started from another student checkpoint, that checkpoint's
    own record is nested under ``from``, so a chain (trained, then distilled or quantisation-aware
    fine-tuned) stays readable from the last bundle.
    """
    record = {"method": method, **details, "data": cfg.data, "train_split": cfg.train_split, "pairs": n_train,
              "epochs": cfg.epochs, "seed": cfg.seed, "init": cfg.init}
    if cfg.layers:  # which encoder layers of init were kept (a smaller student)
        record["layers"] = list(cfg.layers)
    if cfg.ffn:  # and how many feed-forward neurons of each
        record["ffn"] = cfg.ffn
    parent = read_student_meta(cfg.init).get("training") if cfg.init else None
    if parent:
        record["from"] = parent
    if command:
        record["command"] = command
    return record


def fit(cfg: StudentTrainConfig, run: RunContext, objective: Objective, class_ratings, extra_meta: dict | None = None,
        training: dict | None = None) -> dict:
    """The training loop shared by every trainer: batches, steps, dev selection, test report, checkpoint.

    The dev-best classifier goes to ``<out>/best`` as a plain HF folder plus ``student.json``
    (``extra_meta`` is merged into it and into the report; ``training`` is its :func:`training_record`),
    so export treats every trainer's output alike.
    """
    from transformers import get_linear_schedule_with_warmup

    accelerator, encoder, template = run.accelerator, run.encoder, run.template
    out = cfg.out_path
    best_dir = out / "best"
    dev = encode_pairs(encoder, template, load_pairs(cfg.data, cfg.dev_split))
    module = objective.module
    optimizer = _optimizer(cfg, module, objective.classifier(module))
    rng = random.Random(cfg.seed)
    n_train = len(objective.lengths)
    steps_per_epoch = math.ceil(n_train / (cfg.batch_size * accelerator.num_processes))
    total_steps = max(1, int(steps_per_epoch * cfg.epochs))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
    objective = objective.to(accelerator.device)
    eval_every = max(1, steps_per_epoch // max(1, cfg.evals_per_epoch))

    def classifier():
        return objective.classifier(accelerator.unwrap_model(module))

    history: list[dict] = []
    best = {"macro_f1": -1.0}
    step = 0
    started = time.time()
    bar = tqdm(total=total_steps, desc="train", disable=not accelerator.is_main_process)
    while step < total_steps:
        batches = length_bucketed_batches(objective.lengths, cfg.batch_size, rng)
        # every process draws the same order, then takes its own slice of batches
        batches = batches[accelerator.process_index :: accelerator.num_processes]
        module.train()
        for idx in batches:
            if step >= total_steps:
                break
            loss, parts = objective.loss(module, idx, accelerator.device)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(module.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % eval_every == 0 or step == total_steps:
                if accelerator.is_main_process:
                    m = evaluate_model(classifier(), encoder, dev, class_ratings)
                    history.append({"step": step, "epoch": step / steps_per_epoch, "loss": loss.item(),
                                    **{k: float(v) for k, v in parts.items()},
                                    "dev_macro_f1": m["macro_f1"], "dev_rmse": m.get("rmse"),
                                    "elapsed_s": time.time() - started})
                    bar.write(f"step {step}: dev macro-F1 {m['macro_f1']:.4f} acc {m['accuracy']:.4f} "
                              f"rmse {m.get('rmse', float('nan')):.4f}")
                    if m["macro_f1"] > best["macro_f1"]:
                        best = {**m, "step": step}
                        classifier().save_pretrained(best_dir, safe_serialization=True)
                        run.tokenizer.save_pretrained(best_dir)
                accelerator.wait_for_everyone()
                module.train()
    bar.close()
    train_seconds = time.time() - started
    report: dict = {"config": cfg.to_json(), "history": history, "train_seconds": round(train_seconds, 1),
                    "n_train": n_train, "steps": total_steps, **(extra_meta or {})}
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
            **(extra_meta or {}),
            "training": training or training_record(cfg, n_train, "unspecified"),
        }
        (best_dir / STUDENT_META).write_text(json.dumps(meta, indent=2))
        (out / "report.json").write_text(json.dumps(report, indent=2))
        for split in ("dev", "test"):
            if split in report:
                print(format_report(report[split], f"{split} ({cfg.data})"))
    return report
