"""Reasoning SFT: teach the teacher to write a chain that walks the raters' dimensions and ends
with the human label (TRL ``SFTTrainer`` + a LoRA adapter).

Examples are prompt-completion pairs: the prompt is the versioned chat prompt of
:mod:`~teacher.chains.prompts` (exactly what annotation sends), the completion is a seed chain
(:mod:`~teacher.chains.seeds`, source (b) program or (a) bootstrap) plus EOS. The loss is the
completion-only next-token loss

    L = - 1/|c| * sum_{t in completion} log p(x_t | prompt, x_<t)

Examples are drawn class-balanced by default (the rare ``irrelevant`` class was never predicted
by an unbalanced probe).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from relevance.data import Pair, load_pairs
from teacher.chains.attributes import BrandLexicon
from teacher.chains.prompts import PromptTemplate
from teacher.chains.seeds import SeedChain, program_seeds, read_seeds
from teacher.sampling import sample_pairs
from teacher.settings import TrainBase, check_label_split

log = logging.getLogger(__name__)


@dataclass
class TeacherSFTConfig(TrainBase):
    """Reasoning SFT on seed chains that end with the human label."""

    out: str = field(default="runs/teacher/sft", metadata={"help": "output folder (adapter + teacher.json)"})
    split: str = field(default="teacher_train", metadata={"help": "human-labelled split to fine-tune on"})
    seeds: str = field(
        default="attributes",
        metadata={"help": "'attributes' (program-made seed chains, source b) or a seeds .jsonl from "
                          "`teacher bootstrap` (teacher-made, source a)"},
    )
    seed_filter: str = field(
        default="all", metadata={"help": "all | consistent (keep seeds whose findings imply the human label)"}
    )
    same_pairs_as: str = field(default="", metadata={
        "help": "a seeds .jsonl: train only on the pairs it has chains for (compare seed sources on the same pairs)"})
    n_examples: int = field(default=3000, metadata={"help": "SFT examples drawn from the split (0 = all usable)"})
    class_balance: bool = field(default=True, metadata={"help": "draw the same number of examples per label"})
    max_length: int = field(default=384, metadata={"help": "max tokens of prompt + chain"})
    lr: float = field(default=2e-4, metadata={"help": "peak learning rate (LoRA)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_label_split(self.split, "SFT")
        if self.seed_filter not in {"all", "consistent"}:
            raise ValueError("seed_filter must be 'all' or 'consistent'")
        if self.n_examples < 0:
            raise ValueError("n_examples must be >= 0 (0 = every usable pair)")


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

    from teacher.trainer import finish_step, start_step, trainer_kwargs, trainer_process_state

    started = start_step(cfg)
    template = cfg.template()
    pairs, seeds = select_seeds(cfg, load_pairs(cfg.data, cfg.split))
    examples = sft_examples(pairs, seeds, started.tokenizer, template)
    stats = {"examples": len(examples), "labels": dict(Counter(p.label for p in pairs)),
             "sources": dict(Counter(s.source for s in seeds)),
             "consistent_share": sum(s.consistent for s in seeds) / len(seeds)}
    log.info("SFT data: %s", stats)
    with trainer_process_state():
        args = SFTConfig(**trainer_kwargs(cfg, started.out), max_length=cfg.max_length, packing=False,
                         completion_only_loss=True, dataset_num_proc=None)
        trainer = SFTTrainer(model=started.model, args=args, train_dataset=Dataset.from_list(examples),
                             processing_class=started.tokenizer, peft_config=cfg.lora.peft_config())
        trainer.train()
        return finish_step(trainer, started, cfg, "sft", {"data": stats, "prompt_version": template.tag})
