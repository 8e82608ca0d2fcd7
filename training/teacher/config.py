"""Settings of every teacher step (TRL style: dataclasses, each field with a default and help text).

Model and LoRA settings live in their own dataclasses (:class:`LoraSettings`,
:class:`GenerationSettings`) and are nested in the step configs. Defaults are the CPU-sized
runs of this repository; ``docs/teacher.md`` gives the settings for a GPU team at full scale.
This module imports only the standard library (the CLI builds configs without torch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DEFAULT_TEACHER = "smollm2"
DEFAULT_DATA = "../shared/data/homedepot"
# Splits whose text or labels the teacher may never be adapted on: they measure it.
EVALUATION_SPLITS: tuple[str, ...] = ("dev", "test")


def _check_splits_allowed(splits, what: str) -> None:
    bad = sorted(set(splits) & set(EVALUATION_SPLITS))
    if bad:
        raise ValueError(f"{what} may not read the evaluation split(s) {bad}: they measure the teacher")


def _check_label_split(split: str, what: str) -> None:
    """Human labels may train the teacher only from a split other than dev, test and pool."""
    _check_splits_allowed([split], what)
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

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be > 0 and top_p in (0, 1]")


@dataclass
class _StepBase:
    teacher: str = field(
        default=DEFAULT_TEACHER,
        metadata={"help": "teacher to start from: 'smollm2', an HF causal-LM folder, or a teacher folder (teacher.json)"},
    )
    data: str = field(default=DEFAULT_DATA, metadata={"help": "Home Depot folder, generic .jsonl or ESCI .csv"})
    out: str = field(default="runs/teacher/step", metadata={"help": "output folder (adapter + teacher.json)"})
    text_fields: tuple[str, ...] = field(default=("title",), metadata={"help": "service fields shown, in order"})
    seed: int = field(default=13, metadata={"help": "seed for sampling and training"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0 = torch default)"})
    prompt_version: str = field(
        default="", metadata={"help": "prompt template version, e.g. chain-v1 (long rater guidance) ('' = current)"}
    )

    def template(self):
        """The :class:`~training.teacher.prompts.PromptTemplate` these settings prompt with."""
        from training.teacher.prompts import PROMPT_VERSION, PromptTemplate

        return PromptTemplate(version=self.prompt_version or PROMPT_VERSION, text_fields=self.text_fields)

    def __post_init__(self) -> None:
        self.text_fields = tuple(self.text_fields)

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass
class _GenerateBase(_StepBase):
    """A step that generates with the teacher: decoding settings and the weights' dtype."""

    generation: GenerationSettings = field(default_factory=GenerationSettings, metadata={"help": "decoding"})
    dtype: str = field(default="bfloat16", metadata={"help": "weights dtype for generation: bfloat16 | float32"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.generation, dict):
            self.generation = GenerationSettings(**self.generation)


@dataclass
class _TrainBase(_StepBase):
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


@dataclass
class DaptConfig(_TrainBase):
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
        _check_splits_allowed(self.splits, "DAPT")
        if self.block_size < 8 or self.max_tokens < self.block_size:
            raise ValueError("block_size must be >= 8 and max_tokens >= block_size")


@dataclass
class TeacherSFTConfig(_TrainBase):
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
        _check_label_split(self.split, "SFT")
        if self.seed_filter not in {"all", "consistent"}:
            raise ValueError("seed_filter must be 'all' or 'consistent'")
        if self.n_examples < 0:
            raise ValueError("n_examples must be >= 0 (0 = every usable pair)")


@dataclass
class BootstrapConfig(_GenerateBase):
    """Seed-chain source (a): the teacher's own chains by rejection sampling and rationalisation."""

    out: str = field(default="runs/teacher/seeds-bootstrap.jsonl", metadata={"help": "seeds JSONL to write"})
    split: str = field(default="teacher_train", metadata={"help": "human-labelled split"})
    n_pairs: int = field(default=3000, metadata={"help": "pairs to bootstrap (class-balanced draw)"})
    samples_per_pair: int = field(default=4, metadata={"help": "sampled chains per pair for rejection sampling"})
    rationalise: bool = field(default=True, metadata={"help": "retry unmatched pairs with the human label as hint"})
    writer: str = field(default="teacher", metadata={
        "help": "who writes the chains, for their source tag: 'teacher' (source a) or 'llm:<name>' (a stronger LLM)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_label_split(self.split, "bootstrapping")


@dataclass
class RewardWeights:
    """Weights of the reward dimensions (documented in :mod:`training.teacher.reward`); they need not sum to 1."""

    label: float = field(default=0.5, metadata={"help": "label correctness vs. the human label"})
    consistency: float = field(default=0.2, metadata={"help": "findings in the chain imply the stated label"})
    faithfulness: float = field(default=0.15, metadata={"help": "attributes cited appear in the query or service"})
    format: float = field(default=0.15, metadata={"help": "all lines present, in order, short, nothing extra"})
    label_scoring: str = field(default="exact", metadata={
        "help": "exact: 1 for the human label, else 0 | ordinal: 1 - class distance / 2 (partial credit; "
                "hackable: 'partial' earns >= 0.5 against any label, and DPO collapsed onto it)"})

    def __post_init__(self) -> None:
        if min(self.label, self.consistency, self.faithfulness, self.format) < 0:
            raise ValueError("reward weights must be >= 0")
        if self.label_scoring not in {"exact", "ordinal"}:
            raise ValueError("label_scoring must be 'exact' or 'ordinal'")

    def as_dict(self) -> dict[str, float]:
        """The dimension weights only (``label_scoring`` is how the label dimension scores, not a weight)."""
        return {k: v for k, v in asdict(self).items() if k != "label_scoring"}


@dataclass
class RewardSampleConfig(_GenerateBase):
    """Sample outputs of a teacher on labelled pairs and score each on every reward dimension."""

    out: str = field(default="runs/teacher/samples.jsonl", metadata={"help": "scored samples (JSONL) to write"})
    split: str = field(default="teacher_train", metadata={"help": "labelled split to sample on"})
    n_pairs: int = field(default=500, metadata={"help": "pairs to sample (class-balanced)"})
    samples_per_pair: int = field(default=4, metadata={"help": "sampled outputs per pair"})
    weights: RewardWeights = field(default_factory=RewardWeights, metadata={"help": "reward weights"})
    max_chars: int = field(default=400, metadata={"help": "format dimension: longest chain without penalty"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.weights, dict):
            self.weights = RewardWeights(**self.weights)
        _check_label_split(self.split, "reward sampling for DPO")
        if self.samples_per_pair < 2:
            raise ValueError("samples_per_pair must be >= 2 to form chosen/rejected pairs")


@dataclass
class TeacherDPOConfig(_TrainBase):
    """DPO on chosen/rejected pairs built from reward-scored samples."""

    out: str = field(default="runs/teacher/dpo", metadata={"help": "output folder (adapter + teacher.json)"})
    samples: str = field(
        default="", metadata={"help": "scored samples .jsonl from `teacher reward` ('' = sample now)"}
    )
    sampling: RewardSampleConfig = field(
        default_factory=RewardSampleConfig, metadata={"help": "how to sample when no samples file is given"}
    )
    min_margin: float = field(default=0.15, metadata={"help": "min reward gap between chosen and rejected"})
    pairs_per_prompt: int = field(default=1, metadata={"help": "preference pairs kept per query-service pair"})
    selection: str = field(default="label_contrast", metadata={
        "help": "label_contrast: chosen has the human label, rejected not, same count per class | margin: best "
                "vs worst reward (follows the teacher's majority label; the first CPU runs used it)"})
    beta: float = field(default=0.1, metadata={"help": "DPO beta (strength of the KL anchor)"})
    max_length: int = field(default=384, metadata={"help": "max tokens of prompt + output"})
    lr: float = field(default=2e-5, metadata={"help": "peak learning rate (LoRA)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.sampling, dict):
            self.sampling = RewardSampleConfig(**self.sampling)
        if self.beta <= 0 or self.pairs_per_prompt < 1:
            raise ValueError("beta must be > 0 and pairs_per_prompt >= 1")
        if self.selection not in {"label_contrast", "margin"}:
            raise ValueError("selection must be 'label_contrast' or 'margin'")


@dataclass
class CalibrateConfig(_GenerateBase):
    """Fit per-label logit offsets on labelled teacher-training pairs (see training.teacher.calibrate)."""

    out: str = field(default="runs/teacher/calibrated", metadata={"help": "output teacher folder (teacher.json)"})
    split: str = field(default="teacher_train", metadata={"help": "human-labelled split to fit on"})
    n_pairs: int = field(default=400, metadata={"help": "seeded random pairs (natural label mix) to fit on"})
    span: float = field(default=4.0, metadata={"help": "largest offset tried (in logits)"})
    step: float = field(default=0.1, metadata={"help": "grid step of the offsets"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_label_split(self.split, "calibration")
        if self.n_pairs < 3 or self.span <= 0 or self.step <= 0:
            raise ValueError("n_pairs >= 3, span > 0 and step > 0 required")


@dataclass
class AnnotateConfig(_GenerateBase):
    """Label a split with the teacher: resumable, shardable, one JSONL record per pair."""

    out: str = field(default="artifacts/annotations/pool.jsonl", metadata={"help": "annotation JSONL to append to"})
    split: str = field(default="pool", metadata={"help": "split to annotate"})
    shard: str = field(default="0/1", metadata={"help": "'i/n': annotate only shard i of n (by a hash of the id)"})
    limit: int = field(default=0, metadata={"help": "annotate at most N pairs of this shard (0 = all)"})
    retries: int = field(default=2, metadata={"help": "sampled retries of a malformed output before 'failed'"})

    def __post_init__(self) -> None:
        super().__post_init__()
        shard_index(self.shard)
        if self.retries < 0:
            raise ValueError("retries must be >= 0")


@dataclass
class TeacherEvalConfig(_GenerateBase):
    """Measure a teacher on a labelled split."""

    out: str = field(default="", metadata={"help": "write the metrics JSON here ('' = print only)"})
    outputs: str = field(default="", metadata={"help": "write each output (id, text, probs) as JSONL here"})
    split: str = field(default="test", metadata={"help": "split to evaluate"})
    n_pairs: int = field(default=300, metadata={"help": "evaluate a seeded random sample of N pairs (0 = all)"})
    balanced: bool = field(default=False, metadata={"help": "sample the same number of pairs per label"})
    weights: RewardWeights = field(default_factory=RewardWeights, metadata={"help": "reward weights"})


def shard_index(spec: str) -> tuple[int, int]:
    """Parse ``'i/n'`` (0 <= i < n)."""
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {spec!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"shard {spec!r}: need 0 <= i < n")
    return i, n


@dataclass
class HttpBackendConfig:
    """An OpenAI-compatible ``/chat/completions`` server (vLLM, TGI, llama.cpp server, ...)."""

    base_url: str = field(default="http://localhost:8000/v1", metadata={"help": "server URL up to /v1"})
    model: str = field(default="", metadata={"help": "model name sent in each request"})
    name: str = field(default="", metadata={"help": "teacher name written into records ('' = model)"})
    version: str = field(default="http", metadata={"help": "teacher version written into records"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "environment variable holding the key"})
    concurrency: int = field(default=8, metadata={"help": "requests in flight at once"})
    timeout_s: float = field(default=60.0, metadata={"help": "per-request timeout (connect + read)"})
    max_retries: int = field(default=4, metadata={"help": "retries after a timeout, connection error, 429 or 5xx"})
    backoff_s: float = field(default=1.0, metadata={"help": "first retry delay; doubles each retry (with jitter)"})
    backoff_max_s: float = field(default=30.0, metadata={"help": "longest retry delay (also caps Retry-After)"})
    rate_limit_rps: float = field(default=0.0, metadata={"help": "max requests started per second (0 = no limit)"})
    max_tokens: int = field(default=96, metadata={"help": "max tokens per completion"})
    temperature: float = field(default=0.8, metadata={"help": "temperature when sampling (greedy sends 0)"})
    top_logprobs: int = field(default=5, metadata={"help": "alternatives per token for label probabilities (0 = off)"})

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.timeout_s <= 0 or self.max_retries < 0:
            raise ValueError("concurrency >= 1, timeout_s > 0 and max_retries >= 0 required")
        if self.rate_limit_rps < 0 or self.backoff_s < 0:
            raise ValueError("rate_limit_rps and backoff_s must be >= 0")
