"""Domain-adaptive pre-training (DAPT): continued causal-LM training on the platform's own text.

The corpus is the search log as text, one document per distinct (query, service) pair, written
the way the teacher's prompt shows a pair::

    Search: <query>
    Product: <service text>

Only the query and service fields are read: never a label or rating, so the ``pool`` split
(unlabelled search logs in the framework) may contribute text; ``dev`` and ``test`` are refused
(:class:`DaptConfig`). Documents are shuffled, joined with the EOS token
and cut into ``block_size`` blocks until ``max_tokens``; the loss is the plain next-token loss

    L = - 1/T * sum_t log p(x_t | x_<t)

over every token of a block, trained into a LoRA adapter (TRL ``SFTTrainer`` on the
pre-tokenised blocks).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from relevance.bundle.manifest import ServiceTextTemplate
from relevance.data import Pair, load_pairs
from teacher.settings import TeacherRunBase, TrainBase, check_splits_allowed

log = logging.getLogger(__name__)


@dataclass
class DaptConfig(TrainBase):
    """Domain-adaptive pre-training: causal LM on query and service text (never labels)."""

    out: str = field(default="runs/teacher/dapt", metadata={"help": "output folder (adapter + teacher.json)"})
    splits: tuple[str, ...] = field(
        default=("teacher_train", "pool"),
        metadata={"help": "splits whose query/service TEXT is used (labels never are; dev/test refused)"},
    )
    max_tokens: int = field(default=200_000, metadata={"help": "stop building the corpus at about this many tokens"})
    block_size: int = field(default=256, metadata={"help": "tokens per packed training sequence"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.splits = tuple(self.splits)
        check_splits_allowed(self.splits, "DAPT")
        if self.block_size < 8 or self.max_tokens < self.block_size:
            raise ValueError("block_size must be >= 8 and max_tokens >= block_size")


def dapt_documents(pairs: Sequence[Pair], text_fields: tuple[str, ...] = ("title",)) -> list[str]:
    """One document per distinct (query, service text), labels never included."""
    template = ServiceTextTemplate(fields=text_fields)
    seen, docs = set(), []
    for pair in pairs:
        doc = f"Search: {' '.join(pair.query.split())}\nProduct: {template.render(pair.service)}"
        if doc not in seen:
            seen.add(doc)
            docs.append(doc)
    return docs


def pack_blocks(docs: Sequence[str], tokenizer, block_size: int, max_tokens: int, seed: int = 13) -> list[list[int]]:
    """Shuffle ``docs``, join them with EOS and cut full blocks of ``block_size`` tokens (about ``max_tokens`` in all)."""
    order = list(docs)
    random.Random(seed).shuffle(order)
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for doc in order:
        stream += tokenizer.encode(doc, add_special_tokens=False) + [eos]
        if len(stream) >= max_tokens:
            break
    n_blocks = len(stream) // block_size
    if n_blocks == 0:
        raise ValueError(f"only {len(stream)} tokens of text: fewer than one block of {block_size}")
    return [stream[i * block_size:(i + 1) * block_size] for i in range(n_blocks)]


def train_dapt(cfg: DaptConfig):
    """Run DAPT; returns the teacher folder (``cfg.out``) with ``adapter/``, ``teacher.json`` and ``run.json``."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from teacher.trainer import finish_step, start_step, trainer_kwargs, trainer_process_state

    started = start_step(cfg)
    pairs = load_pairs(cfg.data, cfg.splits)
    docs = dapt_documents(pairs, cfg.text_fields)
    blocks = pack_blocks(docs, started.tokenizer, cfg.block_size, cfg.max_tokens, cfg.seed)
    log.info("DAPT corpus: %d documents -> %d blocks of %d tokens", len(docs), len(blocks), cfg.block_size)
    with trainer_process_state():
        args = SFTConfig(**trainer_kwargs(cfg, started.out), max_length=cfg.block_size, packing=False,
                         completion_only_loss=None, dataset_num_proc=None)
        trainer = SFTTrainer(model=started.model, args=args, train_dataset=Dataset.from_dict({"input_ids": blocks}),
                             processing_class=started.tokenizer, peft_config=cfg.lora.peft_config())
        trainer.train()
        return finish_step(trainer, started, cfg, "dapt", {
            "corpus": {"documents": len(docs), "blocks": len(blocks), "tokens": len(blocks) * cfg.block_size,
                       "splits": list(cfg.splits)}})


@dataclass
class PerplexityConfig(TeacherRunBase):
    """Held-out perplexity of a teacher on the platform's text (:func:`held_out_perplexity`).

    The text is packed into blocks as DAPT packs it, from a split DAPT never reads (``dev``).
    """

    out: str = field(default="", metadata={"help": "write the result JSON here ('' = print only)"})
    split: str = field(default="dev", metadata={
        "help": "split whose query + service TEXT is scored (dev: never DAPT input)"})
    max_tokens: int = field(default=20_000, metadata={"help": "tokens scored"})
    block_size: int = field(default=256, metadata={"help": "tokens per packed sequence (as in DAPT)"})
    batch_size: int = field(default=8, metadata={"help": "sequences per forward pass"})


def held_out_perplexity(teacher: str, data: str, split: str = "dev", text_fields: tuple[str, ...] = ("title",),
                        max_tokens: int = 20_000, block_size: int = 256, batch_size: int = 8, threads: int = 0,
                        seed: int = 13) -> dict:
    """What DAPT optimises, measured on text it never saw: ``exp(L)`` with DAPT's loss ``L`` over
    ``split``'s documents (``dev`` by default: refused as DAPT input, so held out), packed the same way.

    The eval table cannot show DAPT's effect before SFT has taught the output format; this can.
    """
    import math
    import time

    import torch

    from teacher.model import load_teacher

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    model, tokenizer, spec = load_teacher(teacher, dtype="float32")
    model.eval()
    blocks = pack_blocks(dapt_documents(load_pairs(data, split), text_fields), tokenizer, block_size, max_tokens, seed)
    nll, predicted = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(blocks), batch_size):
            ids = torch.tensor(blocks[i:i + batch_size])
            loss = model(input_ids=ids, labels=ids).loss  # mean over the block's block_size - 1 next tokens
            n = ids.shape[0] * (block_size - 1)
            nll += float(loss) * n
            predicted += n
    return {"teacher": {"name": spec.name, "version": spec.version}, "split": split, "blocks": len(blocks),
            "tokens": predicted, "nll": nll / predicted, "perplexity": math.exp(nll / predicted),
            "seconds": round(time.perf_counter() - started, 1)}
