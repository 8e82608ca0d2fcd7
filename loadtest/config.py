"""Settings of the load-test tools, as dataclasses (``relevance loadtest``'s options are generated from them).

Torch-free and import-light: the CLI imports this module to build the options; the tools load inside
the commands. The options every tool shares are declared once, in the base classes: the data
(:class:`relevance.config.DataConfig`) and the bundle in :class:`LoadTestConfig`, and ``--set`` for
the service a tool starts in :class:`ServiceConfig`. A config refuses inconsistent settings with a
``ValueError`` (the command line reports it as a usage error).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from relevance.config import DataConfig

DEFAULT_SCENARIO = Path(__file__).parent / "scenarios" / "overload.json"


def parse_settings(items: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` items (``--set``) as lower-case service setting names -> values."""
    settings = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item}: expected NAME=VALUE")
        settings[name.strip().lower()] = value.strip()
    return settings


def services_mix(text: str) -> int | dict[int, float]:
    """``--services``: ``32`` (every request) or ``1:0.05,16:0.2,32:0.25,...`` (count:weight)."""
    try:
        if ":" not in text:
            return int(text)
        return {int(n): float(w) for n, w in (item.split(":") for item in text.split(",") if item.strip())}
    except ValueError:
        raise ValueError(f"{text!r}: expected N or N:WEIGHT,N:WEIGHT,...") from None


def multiples(values: str | Iterable[float | str]) -> list[float]:
    """``--multiples``: positive numbers (comma-separated text or a sequence), in rising order."""
    items = values.split(",") if isinstance(values, str) else values
    try:
        parsed = [float(m) for m in items if str(m).strip()]
    except ValueError:
        parsed = []
    if not parsed or any(v <= 0 for v in parsed):
        raise ValueError(f"{values!r}: expected positive numbers, comma-separated")
    return sorted(parsed)


@dataclass
class LoadTestConfig(DataConfig):
    """What the tools that read a bundle share: the data (its queries and products) and the bundle."""

    bundle: str = field(default="models/default", metadata={
        "help": "the bundle measured: raw ONNX Runtime compute runs it, a service started here serves it"})


@dataclass
class ServiceConfig(LoadTestConfig):
    """A tool that starts ``relevance serve`` on a free loopback port, with service settings of its own."""

    set: list[str] = field(default_factory=list, metadata={
        "metavar": "NAME=VALUE",
        "help": "a setting of the service started here (repeatable; sent as RELEVANCE_NAME, over the tool's "
                "and the scenario's settings), e.g. --set max_batch_pairs=32"})

    def __post_init__(self) -> None:
        self.set = list(self.set)
        parse_settings(self.set)

    @property
    def settings(self) -> dict[str, str]:
        """The ``--set`` settings, by lower-case name."""
        return parse_settings(self.set)


def _floats(values: Iterable) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclass
class BenchConfig(ServiceConfig):
    """``relevance loadtest bench``: the service against raw ORT compute and a naive per-request server."""

    services: int = field(default=32, metadata={"help": "services per request"})
    rates: tuple[float, ...] = field(default=(), metadata={
        "help": "offered rates in pairs/s, comma-separated (default: fractions of the raw compute rate, "
                "see --fractions)"})
    fractions: tuple[float, ...] = field(default=(0.25, 0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 1.75), metadata={
        "help": "offered rates as fractions of raw compute"})
    refine: int = field(default=2, metadata={"help": "bisection steps between the best passing and the first "
                                                     "failing rate"})
    duration: float = field(default=15.0, metadata={"help": "measured seconds per offered rate"})
    warmup: float = field(default=2.0, metadata={"help": "unmeasured seconds at each rate before measuring"})
    max_requests: int = field(default=3000, metadata={"help": "measured requests per rate at most"})
    arrivals: str = field(default="poisson", metadata={
        "help": "inter-arrival times: poisson (exponential, realistic) or uniform (evenly spaced)"})
    p99_target_ms: float = field(default=100.0, metadata={"help": "latency target for 'best throughput'"})
    deadline_ms: float = field(default=0.0, metadata={
        "help": "X-Deadline-Ms sent with each request (0: none, the service's default applies)"})
    timeout: float = field(default=10.0, metadata={"help": "client timeout per request, seconds"})
    pause: float = field(default=1.0, metadata={"help": "seconds between rates, for queues to drain"})
    raw_seconds: float = field(default=10.0, metadata={"help": "how long to run raw ORT compute"})
    precision: str = field(default="", metadata={"help": "graph to run ('' = the bundle's default)"})
    intra_op_threads: int = field(default=0, metadata={"help": "ORT threads for all three (0: all cores)"})
    cache: bool = field(default=False, metadata={
        "help": "leave the result cache on (off by default: it would measure repeats, not the model)"})
    skip_raw: bool = field(default=False, metadata={"help": "do not measure raw ORT compute"})
    skip_naive: bool = field(default=False, metadata={"help": "do not measure the naive baseline"})
    bodies: int = field(default=2000, metadata={"help": "distinct request bodies to cycle through"})
    out: str = field(default="runs/loadtest/bench.md", metadata={"help": "markdown output ('' to skip)"})
    seed: int = field(default=0, metadata={"help": "seed of the request bodies and arrivals"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rates, self.fractions = _floats(self.rates), _floats(self.fractions)
        if self.arrivals not in ("poisson", "uniform"):
            raise ValueError(f"--arrivals {self.arrivals}: expected poisson or uniform")
        if not self.rates and self.skip_raw:
            raise ValueError("--skip-raw needs --rates (the default rates are fractions of the raw compute "
                             "rate)")


@dataclass
class RawConfig(LoadTestConfig):
    """``relevance loadtest raw``: raw ONNX Runtime compute of request batches, padded and as the batcher
    plans them."""

    services: int = field(default=32, metadata={"help": "services per request"})
    run_pairs: tuple[int, ...] = field(default=(4, 8, 16, 32), metadata={
        "help": "max_run_pairs values to compare"})
    seconds: float = field(default=10.0, metadata={"help": "timed seconds per plan"})
    threads: int = field(default=0, metadata={"help": "ORT intra-op threads (0: all cores)"})

    def __post_init__(self) -> None:
        self.run_pairs = tuple(int(k) for k in self.run_pairs)


@dataclass
class ParetoConfig(DataConfig):
    """``relevance loadtest pareto``: bundles' quality against their speed, every number from one run."""

    bundles: tuple[str, ...] = field(default=("models/default",), metadata={
        "help": "bundle folders, comma-separated; the first is the baseline of the ratios"})
    split: str = field(default="test", metadata={"help": "split the quality is measured on"})
    services: int = field(default=32, metadata={"help": "services per request (raw compute and lone requests)"})
    raw_seconds: float = field(default=8.0, metadata={"help": "timed seconds of raw compute per bundle"})
    lone_requests: int = field(default=30, metadata={
        "help": "lone requests per bundle through the service, one at a time, each a new query"})
    lone_gap_s: float = field(default=0.1, metadata={"help": "pause between lone requests, seconds"})
    threads: int = field(default=0, metadata={"help": "ORT intra-op threads of raw compute (0: all cores)"})
    out: str = field(default="runs/pareto", metadata={"help": "folder for report.json, report.md and pareto.png"})
    doc: str = field(default="", metadata={
        "help": "markdown file whose pareto section is (re)written with the table and plot ('' = none)"})

    def __post_init__(self) -> None:
        self.bundles = tuple(self.bundles)
        if not self.bundles:
            raise ValueError("--bundles: at least one bundle")


@dataclass
class PathConfig(LoadTestConfig):
    """``relevance loadtest path``: a lone request's latency through the service against its compute."""

    sizes: tuple[int, ...] = field(default=(1, 8, 16, 32), metadata={"help": "services per request, comma-separated"})
    requests: int = field(default=30, metadata={"help": "timed lone requests per size (each a new query)"})
    gap_s: float = field(default=0.1, metadata={"help": "pause between lone requests, seconds"})
    out: str = field(default="runs/path", metadata={"help": "folder for report.json and report.md"})

    def __post_init__(self) -> None:
        self.sizes = tuple(int(n) for n in self.sizes)
        if not self.sizes or min(self.sizes) < 1 or self.requests < 1:
            raise ValueError("--sizes and --requests must be >= 1")


@dataclass
class QueueingConfig:
    """``relevance loadtest queueing``: the M/D/1 p99 ceiling of a latency target, from the compute per
    request."""

    service_ms: float | None = field(default=None, metadata={
        "help": "compute per request (ms); or --raw-pairs-s"})
    raw_pairs_s: float | None = field(default=None, metadata={
        "help": "raw compute rate (pairs/s); with --pairs gives the service time"})
    pairs: int = field(default=32, metadata={"help": "pairs (services) per request"})
    p99_ms: float = field(default=100.0, metadata={"help": "the latency target"})
    utilisation: float = field(default=0.85, metadata={"help": "the utilisation a throughput target implies"})

    def __post_init__(self) -> None:
        if (self.service_ms is None) == (self.raw_pairs_s is None):
            raise ValueError("one of --service-ms and --raw-pairs-s is required, not both")


# the scenario's step section that the command line may override: name -> help
STEP_OVERRIDES = {
    "start_pairs_s": "offered rate of the first step, pairs/s",
    "step_pairs_s": "added to the offered rate at each step, pairs/s",
    "max_steps": "steps at most before refining",
    "refine": "bisection steps between the last good and the first bad rate",
    "duration_s": "measured seconds per step",
    "warmup_s": "unmeasured seconds at each step's rate first",
    "pause_s": "seconds between steps",
    "max_total_s": "time budget of the whole search, seconds",
}


def _step(name: str):
    return field(default=None, metadata={"help": STEP_OVERRIDES[name] + " (default: the scenario's)"})


@dataclass
class LoadRunConfig(ServiceConfig):
    """``relevance loadtest run``: the highest throughput under a p99 target, for one scenario."""

    bundle: str = field(default="", metadata={
        "help": "start `relevance serve` on this bundle on a free loopback port (default: models/default)"})
    scenario: str = field(default="", metadata={
        "help": "scenario file (.yaml/.json), e.g. loadtest/scenarios/ads-32.yaml"})
    url: str = field(default="", metadata={
        "help": "load an already running service, e.g. http://127.0.0.1:8000 (loopback only; for a cluster, "
                "kubectl port-forward first); not with --bundle or --set"})
    p99_target_ms: float | None = field(default=None, metadata={
        "help": "p99 target of a good step (default: the scenario's, else 100)"})
    out_dir: str = field(default="", metadata={
        "help": "where the report and plot go (default: runs/loadtest/NAME)"})
    start_pairs_s: float | None = _step("start_pairs_s")
    step_pairs_s: float | None = _step("step_pairs_s")
    max_steps: int | None = _step("max_steps")
    refine: int | None = _step("refine")
    duration_s: float | None = _step("duration_s")
    warmup_s: float | None = _step("warmup_s")
    pause_s: float | None = _step("pause_s")
    max_total_s: float | None = _step("max_total_s")
    seed: int | None = field(default=None, metadata={"help": "override the scenario's seed"})
    check: bool = field(default=False, metadata={
        "help": "validate the scenario and data, print the traffic, send nothing"})
    print_schema: bool = field(default=False, metadata={"help": "print the scenario JSON schema and exit"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.print_schema and not self.scenario:
            raise ValueError("--scenario is required (examples: loadtest/scenarios/)")
        if self.url and self.bundle:
            raise ValueError("--url and --bundle: load a running service or start one here, not both")
        if self.url and self.set:
            raise ValueError("--set configures a service started here (--bundle); a running --url keeps its "
                             "own settings")


@dataclass
class OverloadConfig(ServiceConfig):
    """``relevance loadtest overload``: the latency promises at offered loads of multiples of the raw
    compute rate."""

    scenario: str = field(default_factory=lambda: str(DEFAULT_SCENARIO), metadata={
        "help": "the traffic, a scenario file (loadtest/scenario.py) "
                "(default: loadtest/scenarios/overload.json)"})
    services: str = field(default="", metadata={
        "help": "services per request, overriding the scenario's: N, or N:WEIGHT,... (e.g. 8:1,32:2,128:1)"})
    deadline_ms: float | None = field(default=None, metadata={
        "help": "X-Deadline-Ms of every request (default: the scenario's, 250)"})
    multiples: tuple[float, ...] = field(default=(0.25, 0.5, 1, 2, 5), metadata={
        "help": "offered loads as multiples of R, comma-separated"})
    duration: float = field(default=12.0, metadata={"help": "seconds of load per multiple"})
    max_requests: int = field(default=4000, metadata={"help": "requests per load at most"})
    probes_per_s: float = field(default=4.0, metadata={
        "help": "/healthz and /metrics probes per second during a load, taking turns"})
    raw_seconds: float = field(default=4.0, metadata={"help": "seconds to time the raw compute rate"})
    latch: bool = field(default=True, metadata={
        "help": "begin with the latch sequence on the fresh server: 10 s of 4-service requests at 5/s, then four "
                "lone 32-service requests 2 s apart, no deadline header (about 18 s)"})
    lone_repeats: int = field(default=15, metadata={"help": "requests per size in the lone table"})
    lone_gap_s: float = field(default=0.2, metadata={"help": "pause between lone requests, seconds"})
    pause_s: float = field(default=1.0, metadata={"help": "pause between loads, seconds"})
    timeout: float = field(default=10.0, metadata={"help": "client timeout per request, seconds"})
    out_dir: str = field(default="runs/overload", metadata={
        "help": "report.json, report.md, overload.png and server.log"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.multiples = tuple(multiples(self.multiples))
        if self.services:
            services_mix(self.services)

    @property
    def services_override(self) -> int | dict[int, float] | None:
        """``--services`` as a count or a count -> weight mix; None: the scenario's."""
        return services_mix(self.services) if self.services else None


@dataclass
class EnginesConfig(DataConfig):
    """``relevance loadtest engines``: ONNX Runtime against OpenVINO on the same student, requests and threads."""

    bundle: str = field(default="models/default", metadata={
        "help": "bundle with a static INT8 graph for ONNX Runtime (what relevance export ships)"})
    services: int = field(default=32, metadata={"help": "test services per timed request"})
    requests: int = field(default=64, metadata={"help": "distinct timed requests, cycled"})
    run_pairs: int = field(default=0, metadata={"help": "pairs per sorted run (0 = the service's max_run_pairs)"})
    seconds: float = field(default=8.0, metadata={"help": "timed seconds per engine, interleaved request by request"})
    threads: int = field(default=2, metadata={"help": "intra-op threads of every engine"})
    dev_split: str = field(default="dev", metadata={"help": "split each engine's quality is checked on"})
    calibration_split: str = field(default="teacher_train", metadata={
        "help": "split NNCF's INT8 quantisation calibrates on (never the quality split)"})
    calibration_pairs: int = field(default=512, metadata={"help": "seeded calibration pairs for NNCF"})
    doc: str = field(default="docs/benchmarks.md", metadata={
        "help": "Markdown file whose <!-- engines begin/end --> block is replaced ('' = print only)"})
