"""Reasoning SFT: teach the teacher to write a chain that walks the raters' dimensions and ends
with the human label (TRL ``SFTTrainer`` + a LoRA adapter).

Examples are prompt-completion pairs: the prompt is the versioned chat prompt of
:mod:`~training.teacher.prompts` (exactly what annotation sends), the completion is a seed chain
(:mod:`~training.teacher.seeds`, source (b) program or (a) bootstrap) plus EOS. The loss is the
completion-only next-token loss

    L = - 1/|c| * sum_{t in completion} log p(x_t | prompt, x_<t)

Examples are drawn class-balanced by default (the rare ``irrelevant`` class was never predicted
by an unbalanced probe).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from relevance.data import Pair, load_pairs
from training.teacher.attributes import BrandLexicon
from training.teacher.config import TeacherSFTConfig
from training.teacher.prompts import PromptTemplate
from training.teacher.sampling import sample_pairs
from training.teacher.seeds import SeedChain, program_seeds, read_seeds

log = logging.getLogger(__name__)


def select_seeds(cfg: TeacherSFTConfig, pairs: Sequence[Pair]) -> tuple[list[Pair], list[SeedChain]]:
    """The (pair, seed chain) couples SFT trains on, in a seeded, optionally class-balanced draw."""
    labelled = [p for p in pairs if p.label is not None]
    if cfg.seeds == "attributes":
        lexicon = BrandLexicon.from_titles(p.service.get("title", "") for p in labelled)
        by_id = {s.id: s for s in program_seeds(labelled, lexicon, cfg.text_fields)}
    else:
        by_id = {s.id: s for s in read_seeds(cfg.seeds)}
    if cfg.seed_filter == "consistent":
        by_id = {k: s for k, s in by_id.items() if s.consistent}
    usable = [p for p in labelled if p.id in by_id and by_id[p.id].label == p.label]
    if cfg.same_pairs_as:
        same = {s.id for s in read_seeds(cfg.same_pairs_as)}
        usable = [p for p in usable if p.id in same]
    if not usable:
        raise ValueError(f"no seed chains for split {cfg.split!r} from {cfg.seeds!r}")
    chosen = sample_pairs(usable, cfg.n_examples, cfg.seed, balanced=cfg.class_balance)
    return chosen, [by_id[p.id] for p in chosen]


def sft_examples(pairs: Sequence[Pair], seeds: Sequence[SeedChain], tokenizer, template: PromptTemplate) -> list[dict]:
    return [{"prompt": template.render(tokenizer, p), "completion": s.chain} for p, s in zip(pairs, seeds)]


def train_sft(cfg: TeacherSFTConfig):
    """Run reasoning SFT; returns the teacher folder (``cfg.out``)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from training.teacher.trainer_utils import finish_step, start_step, trainer_kwargs

    started = start_step(cfg)
    template = cfg.template()
    pairs, seeds = select_seeds(cfg, load_pairs(cfg.data, cfg.split))
    examples = sft_examples(pairs, seeds, started.tokenizer, template)
    stats = {"examples": len(examples), "labels": dict(Counter(p.label for p in pairs)),
             "sources": dict(Counter(s.source for s in seeds)),
             "consistent_share": sum(s.consistent for s in seeds) / len(seeds)}
    log.info("SFT data: %s", stats)
    args = SFTConfig(**trainer_kwargs(cfg, started.out), max_length=cfg.max_length, packing=False,
                     completion_only_loss=True, dataset_num_proc=None)
    trainer = SFTTrainer(model=started.model, args=args, train_dataset=Dataset.from_list(examples),
                         processing_class=started.tokenizer, peft_config=cfg.lora.peft_config())
    trainer.train()
    return finish_step(trainer, started, cfg, "sft", {"data": stats, "prompt_version": template.version})
