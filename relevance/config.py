"""The settings every offline command shares (data, output folder, seed, threads), as one base dataclass.

Step configs (the student's, CRSD's, the teacher's steps, the load tests') extend :class:`RunConfig`,
so the four settings have one name, one default and one help text everywhere, and the CLI that is
generated from the dataclasses shows them the same way on every command. Field ``metadata["help"]``
is the option's help text (TRL's ``TrlParser`` convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relevance.data import default_data


@dataclass
class DataConfig:
    """The data a command reads; one default for every command (``relevance.data.default_data``)."""

    data: str = field(default_factory=default_data, metadata={
        "help": "Home Depot folder (pairs.csv + splits.csv), a generic .jsonl or the ESCI .csv "
                "(default: $RELEVANCE_DATA, else ../shared/data/homedepot)"})


@dataclass
class RunConfig(DataConfig):
    """Data, output folder, seed and threads: what every training or annotation run sets."""

    out: str = field(default="runs/out", metadata={"help": "output folder"})
    seed: int = field(default=13, metadata={"help": "random seed"})
    threads: int = field(default=0, metadata={"help": "CPU threads for torch / ONNX Runtime (0 = their default)"})


@dataclass
class EvalConfig(DataConfig):
    """``relevance eval``: a bundle's metrics on a labelled split, through the serving code path."""

    bundle: str = field(default="", metadata={"help": "bundle folder (e.g. models/default)"})
    split: str = field(default="test", metadata={"help": "split to evaluate ('' = every pair, e.g. a file without splits)"})
    precision: str = field(default="", metadata={"help": "graph to run ('' = the bundle's default)"})
    out: str = field(default="", metadata={"help": "write the metrics as JSON here ('' = print only)"})
