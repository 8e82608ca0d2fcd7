"""Settings of the lab's tools, as dataclasses (the CLI's options are generated from them).

Torch-free and import-light: the CLI imports this module to build ``relevance lab``'s options; the
tools themselves load inside the commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relevance.config import DataConfig


@dataclass
class RuntimesConfig(DataConfig):
    """``relevance lab runtimes``: the student's throughput under PyTorch eager, ORT fp32 and ORT INT8."""

    bundle: str = field(default="", metadata={"help": "bundle folder (e.g. models/default)"})
    checkpoint: str = field(default="", metadata={"help": "PyTorch checkpoint ('' = the bundle's source checkpoint)"})
    split: str = field(default="test", metadata={"help": "split the timed pairs are drawn from"})
    batch_sizes: tuple[int, ...] = field(default=(1, 8, 32, 64), metadata={"help": "batch sizes, one row each"})
    batches: int = field(default=20, metadata={"help": "distinct batches per batch size"})
    min_seconds: float = field(default=3.0, metadata={"help": "timed seconds per cell"})
    threads: int = field(default=2, metadata={"help": "intra-op threads of every runtime"})
    out: str = field(default="docs/benchmarks.md", metadata={
        "help": "Markdown file whose '## Student throughput' section is replaced"})

    def __post_init__(self) -> None:
        self.batch_sizes = tuple(int(b) for b in self.batch_sizes)


@dataclass
class ProfileConfig(DataConfig):
    """``relevance lab profile``: ONNX Runtime's per-operator profile of bundles, on the same batches."""

    bundles: tuple[str, ...] = field(default=(), metadata={"help": "bundle folders, profiled on the same batches"})
    precision: str = field(default="", metadata={"help": "graph to profile ('' = each bundle's default)"})
    split: str = field(default="test", metadata={"help": "split the profiled pairs are drawn from"})
    batch: int = field(default=32, metadata={"help": "pairs per batch (one request's services)"})
    batches: int = field(default=20, metadata={"help": "distinct batches, cycled"})
    runs: int = field(default=60, metadata={"help": "profiled (and then timed) runs per bundle"})
    threads: int = field(default=2, metadata={"help": "intra-op threads"})
    out: str = field(default="", metadata={
        "help": "Markdown file whose '## Where the time goes' section is replaced ('' = print only)"})

    def __post_init__(self) -> None:
        self.bundles = tuple(self.bundles)


@dataclass
class QuantSweepConfig(DataConfig):
    """``relevance lab quant-sweep``: INT8 schemes for a bundle's fp32 graph, compared on dev agreement, size, speed."""

    bundle: str = field(default="", metadata={
        "help": "a bundle that ships the fp32 graph (relevance export without --ship)"})
    threads: int = field(default=2, metadata={"help": "intra-op threads"})
    batches: int = field(default=10, metadata={"help": "timed batches of 32 test pairs (each run 3 times)"})
    calibration_split: str = field(default="teacher_train", metadata={"help": "split the mixed scheme plans on"})
    calibration_pairs: int = field(default=1024, metadata={"help": "seeded calibration pairs"})


@dataclass
class TeacherStrengthConfig:
    """``relevance lab teacher-strength``: CRSD minus label-only KD against the teacher's macro-F1."""

    spec: str = field(default="artifacts/compare/teacher-strength.json", metadata={
        "help": "JSON listing each teacher, its macro-F1 (or metrics file) and the recorded runs of its two rows"})
    doc: str = field(default="docs/results.md", metadata={"help": "markdown file whose section is (re)written"})
    section: str = field(default="teacher-strength", metadata={"help": "name of the section markers in DOC"})
    plot: str = field(default="docs/img/teacher-strength.png", metadata={"help": "PNG of the curve ('' = none)"})
