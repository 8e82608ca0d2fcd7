"""Settings of the gated export commands, as dataclasses (the CLI's options are generated from them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from relevance.config import DataConfig

INT8_SCHEMES = ("blockwise", "mixed", "static")
DEFAULT_OPSET = 17
PRECISIONS = ("fp32", "int8", "fp16")


@dataclass(frozen=True)
class ParityLimits:
    """What the export gate allows between a bundle's graphs and their reference."""

    max_abs_diff: float = 1e-4
    min_int8_agreement: float = 0.99
    max_int8_f1_drop: float = 0.003
    max_batch_diff: float = 1e-4


@dataclass
class ExportConfig(DataConfig):
    """``relevance export``: a student checkpoint -> fused fp32 / INT8 (/ FP16) graphs -> parity gate -> bundle."""

    checkpoint: str = field(default="", metadata={"help": "student checkpoint folder (e.g. runs/student/best)"})
    out: str = field(default="", metadata={"help": "bundle folder to write (replaced only if the parity gate passes)"})
    name: str = field(default="relevance-student", metadata={"help": "bundle name reported by the service"})
    version: str = field(default="", metadata={"help": "bundle version ('' = UTC timestamp)"})
    precisions: tuple[str, ...] = field(default=("fp32", "int8"), metadata={
        "help": "graphs to build: fp32 (always, the parity reference), int8, fp16 (for GPUs)"})
    default_precision: str = field(default="int8", metadata={"help": "graph the service runs by default: int8 | fp32 | fp16"})
    ship: tuple[str, ...] = field(default=(), metadata={
        "help": "precisions kept in the bundle (empty = all built; 'int8' for a small CPU bundle)"})
    dev_split: str = field(default="dev", metadata={"help": "split of the INT8 gate"})
    test_split: str = field(default="test", metadata={"help": "split evaluated into bundle.json ('' skips it)"})
    parity_samples: int = field(default=256, metadata={"help": "dev pairs of the fp32 ONNX-vs-PyTorch check"})
    max_abs_diff: float = field(default=1e-4, metadata={"help": "gate: max |fp32 ONNX - PyTorch| logit difference"})
    min_int8_agreement: float = field(default=0.99, metadata={"help": "gate: min INT8 vs fp32 label agreement on dev"})
    max_int8_f1_drop: float = field(default=0.003, metadata={"help": "gate: max INT8 dev macro-F1 loss (0.003 = 0.3 pt)"})
    opset: int = field(default=DEFAULT_OPSET, metadata={"help": "ONNX opset"})
    int8_scheme: str = field(default="blockwise", metadata={
        "help": "blockwise: every MatMul block-wise 8-bit (most accurate, slow kernel) | static: every MatMul takes "
                "the ~2x faster per-tensor kernel with calibrated activation scales (for checkpoints from "
                "`relevance quant-aware`) | mixed: only MatMuls that tolerate it go per-tensor, chosen by measured "
                "sensitivity"})
    calibration_split: str = field(default="teacher_train", metadata={
        "help": "split the static and mixed schemes calibrate on (never the gate's)"})
    calibration_pairs: int = field(default=1024, metadata={"help": "seeded calibration pairs (static and mixed schemes)"})
    calibration_max_loss: float = field(default=0.002, metadata={
        "help": "mixed: most calibration label agreement (vs fp32) the plan may give up against all-block-wise"})

    def __post_init__(self) -> None:
        self.precisions, self.ship = tuple(self.precisions), tuple(self.ship or self.precisions)
        if not self.checkpoint or not self.out:
            raise ValueError("an export needs a checkpoint and an output folder")
        if "fp32" not in self.precisions:
            raise ValueError("the fp32 graph is always exported: it is the parity reference")
        if not set(self.precisions) <= set(PRECISIONS):
            raise ValueError(f"precisions must be among {PRECISIONS}, got {self.precisions}")
        if self.int8_scheme not in INT8_SCHEMES:
            raise ValueError(f"int8_scheme must be one of {INT8_SCHEMES}, got {self.int8_scheme!r}")
        if self.default_precision not in self.ship or not set(self.ship) <= set(self.precisions):
            raise ValueError(f"default precision {self.default_precision} and shipped {self.ship} must be among "
                             f"{self.precisions}")

    @property
    def limits(self) -> ParityLimits:
        return ParityLimits(self.max_abs_diff, self.min_int8_agreement, self.max_int8_f1_drop)


@dataclass
class OptimizeConfig(DataConfig):
    """``relevance optimize``: rewrite an existing bundle's graphs for faster CPU kernels, gated against the source."""

    bundle: str = field(default="", metadata={"help": "existing bundle folder (e.g. models/default)"})
    out: str = field(default="", metadata={"help": "new bundle folder (written only if the rewritten graphs pass)"})
    version: str = field(default="", metadata={"help": "version of the new bundle (same weights, new graphs)"})
    max_length: int = field(default=0, metadata={
        "help": "serve pairs cut to this many tokens (0 = the source's): shorter padded runs for the few long "
                "pairs; every graph is then gated on dev labels and macro-F1 against the source's"})
    engine: str = field(default="onnxruntime", metadata={
        "help": "onnxruntime: split the fusions whose CPU kernels are slow | openvino: the static INT8 graph in "
                "standard QDQ operators, served by OpenVINO (INT8 on AMX where the CPU has it; needs the "
                "openvino extra)"})
    dev_split: str = field(default="dev", metadata={"help": "split of the gate"})
    test_split: str = field(default="test", metadata={"help": "split evaluated into bundle.json ('' skips it)"})
    min_agreement: float = field(default=0.99, metadata={
        "help": "gate: min INT8 label agreement with the source graph on dev"})
    max_f1_drop: float = field(default=0.003, metadata={"help": "gate: max dev macro-F1 loss vs the source graph"})

    def __post_init__(self) -> None:
        if not self.bundle or not self.out or not self.version:
            raise ValueError("optimize needs a source bundle, an output folder and a version")
        if self.max_length and self.max_length < 8:
            raise ValueError("max_length must be 0 (the source's) or at least 8 tokens")
        if self.engine not in ("onnxruntime", "openvino"):
            raise ValueError(f"engine must be onnxruntime or openvino, got {self.engine!r}")

    @property
    def limits(self) -> ParityLimits:
        return ParityLimits(min_int8_agreement=self.min_agreement, max_int8_f1_drop=self.max_f1_drop)
