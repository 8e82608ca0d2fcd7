"""What the teacher's step configs share: the step bases, LoRA and decoding settings, the split guards.

Step configs (TRL style: dataclasses, each field with a default and help text) live beside their
steps in :mod:`teacher.steps`; they extend :class:`StepBase` (itself a :class:`relevance.config.RunConfig`,
so data, out, seed and threads read the same as on every other command) through
:class:`GenerateBase` or :class:`TrainBase` (a measurement that only loads a teacher, ``relevance teacher
perplexity``, extends :class:`TeacherRunBase`). Model and LoRA settings live in their own dataclasses
(:class:`LoraSettings`, :class:`GenerationSettings`) and are nested in the step configs (on the
command line ``--lora-r``, ``--lora-alpha``, ...; the decoding settings keep their own names,
``--max-new-tokens``, ``--batch-size``, ...). Defaults are
the CPU-sized runs of this repository; ``docs/training.md`` gives the settings for a GPU team at full
scale. Nothing here imports torch (the CLI builds configs without it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from relevance.config import RunConfig

DEFAULT_TEACHER = "smollm2"
# Splits whose text or labels the teacher may never be adapted on: they measure it.
EVALUATION_SPLITS: tuple[str, ...] = ("dev", "test")


def check_splits_allowed(splits, what: str) -> None:
    bad = sorted(set(splits) & set(EVALUATION_SPLITS))
    if bad:
        raise ValueError(f"{what} may not read the evaluation split(s) {bad}: they measure the teacher")


def check_label_split(split: str, what: str) -> None:
    """Human labels may train the teacher only from a split other than dev, test and pool."""
    check_splits_allowed([split], what)
    if split == "pool":
        raise ValueError(f"{what}: the pool's human labels only measure the teacher (use teacher_train)")


@dataclass
class LoraSettings:
    r: int = field(default=16, metadata={"help": "LoRA rank"})
    alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    target_modules: str = field(
        default="all-linear", metadata={"help": "'all-linear' or comma-separated module names (q_proj,v_proj,...)"}
    )

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1 or not 0 <= self.dropout < 1:
            raise ValueError("LoRA needs r >= 1, alpha >= 1 and 0 <= dropout < 1")

    def peft_config(self):
        from peft import LoraConfig

        targets = self.target_modules if self.target_modules == "all-linear" else [
            t.strip() for t in self.target_modules.split(",") if t.strip()
        ]
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=targets,
                          bias="none", task_type="CAUSAL_LM")


@dataclass
class GenerationSettings:
    max_new_tokens: int = field(default=72, metadata={"help": "tokens generated per output (a chain is ~45-60)"})
    batch_size: int = field(default=8, metadata={"help": "prompts per generate() call (CPU: 8-32; GPU: 64+)"})
    temperature: float = field(default=0.8, metadata={"help": "temperature when sampling (greedy ignores it)"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass when sampling"})
    constrain_label: bool = field(
        default=True, metadata={"help": "after 'Label:' allow only a label word, then the end (local backend)"}
    )
    prefix_cache: bool = field(default=True, metadata={
        "help": "compute the prompt prefix every pair shares (system text, few-shot examples) once and reuse its "
                "key/value cache (local backend; same outputs, much less prefill)"})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be > 0 and top_p in (0, 1]")


@dataclass
class TeacherRunBase(RunConfig):
    """Every command that loads a teacher: which one, and the service fields it is shown."""

    teacher: str = field(
        default=DEFAULT_TEACHER,
        metadata={"help": "teacher to start from: 'smollm2', an HF causal-LM folder, or a teacher folder (teacher.json)"},
    )
    text_fields: tuple[str, ...] = field(default=("title",), metadata={"help": "service fields shown, in order"})

    def __post_init__(self) -> None:
        self.text_fields = tuple(self.text_fields)


@dataclass
class StepBase(TeacherRunBase):
    """Every teacher step: the teacher it starts from, the service fields shown and the prompt version."""

    out: str = field(default="runs/teacher/step", metadata={"help": "output folder (adapter + teacher.json)"})
    prompt_version: str = field(
        default="", metadata={"help": "prompt template version, e.g. chain-v1 (long rater guidance) ('' = current)"}
    )

    def template(self):
        """The :class:`~teacher.chains.prompts.PromptTemplate` these settings prompt with."""
        from teacher.chains.prompts import PROMPT_VERSION, PromptTemplate

        return PromptTemplate(version=self.prompt_version or PROMPT_VERSION, text_fields=self.text_fields)

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass
class GenerateBase(StepBase):
    """A step that generates with the teacher: decoding settings and the weights' dtype."""

    # flattened without a prefix on the command line: --max-new-tokens, --batch-size, --temperature, --top-p
    generation: GenerationSettings = field(default_factory=GenerationSettings,
                                           metadata={"help": "decoding", "cli_prefix": ""})
    dtype: str = field(default="bfloat16", metadata={"help": "weights dtype for generation: bfloat16 | float32"})
    shots: int = field(default=0, metadata={
        "help": "worked examples before each pair (few-shot, for an instruct model without SFT): the attribute "
                "program's chains ending with the human label, class-balanced from shots_split (0 = none)"})
    shots_split: str = field(default="teacher_train", metadata={
        "help": "human-labelled split the few-shot examples come from (never dev, test or pool)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.generation, dict):
            self.generation = GenerationSettings(**self.generation)
        if self.shots < 0:
            raise ValueError("shots must be >= 0")
        if self.shots:
            check_label_split(self.shots_split, "few-shot examples")

    def template(self):
        """The prompt template, with ``shots`` worked examples drawn (seeded) from ``shots_split``."""
        template = super().template()
        if not self.shots:
            return template
        from dataclasses import replace

        from relevance.data import load_pairs
        from teacher.chains.prompts import few_shot_examples

        examples = few_shot_examples(load_pairs(self.data, self.shots_split), self.shots, self.seed, self.text_fields,
                                     template.max_field_chars)
        return replace(template, shots=examples)


@dataclass
class TrainBase(StepBase):
    """A step that trains one new LoRA adapter on the teacher it starts from."""

    lora: LoraSettings = field(default_factory=LoraSettings, metadata={"help": "LoRA adapter settings"})
    batch_size: int = field(default=8, metadata={"help": "sequences per step and device"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    lr: float = field(default=2e-4, metadata={"help": "peak learning rate (LoRA)"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the data (ignored when max_steps > 0)"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many optimiser steps (-1 = by epochs)"})
    warmup_ratio: float = field(default=0.03, metadata={"help": "linear warm-up share of the steps"})
    # TRL 1.16 turns both on by default; the teacher sets them explicitly (see the data README).
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast (1.6x faster LoRA steps on this CPU)"})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations (saves GPU memory on long sequences; slower)"}
    )
    logging_steps: int = field(default=10, metadata={"help": "log the loss every N steps"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if self.batch_size < 1 or self.grad_accum < 1 or self.lr <= 0:
            raise ValueError("batch_size and grad_accum must be >= 1 and lr > 0")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ValueError("give epochs > 0 or max_steps > 0")
