"""Where a bundle's inference time goes: ONNX Runtime's per-node profile, summed by operator type.

    relevance lab profile models/default runs/bundle-new

Every bundle scores the *same* padded batches of random test pairs (``--batch`` pairs each, the
size of one request) through the serving backend (its session options and the manifest's
``disabled_optimizers``). For each operator type the table gives the kernel milliseconds per batch
and the share of the total; the last rows give the wall-clock time per batch measured outside the
profiler, the bundles taking turns batch by batch (a noisy neighbour slows them alike), and its
ratio to the first bundle. With ``--out`` the table replaces its section of that
Markdown file.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from lab.config import ProfileConfig
from lab.runtimes import sample_batches, write_section
from relevance.bundle import load_bundle
from relevance.data import load_pairs
from relevance.model import BundleModel


@dataclass
class Profile:
    label: str
    kernel_ms: dict[str, float]  # op type -> kernel ms per batch
    nodes: Counter  # op type -> nodes run per batch
    wall_ms: float  # median wall-clock ms per batch, profiler off, timed interleaved with the others


def kernel_times(trace: Path, runs: int) -> tuple[dict[str, float], Counter]:
    """Sum ORT's ``*_kernel_time`` events of a profile trace by op type, per run."""
    total: dict[str, float] = defaultdict(float)
    count: Counter = Counter()
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            total[op] += event["dur"] / 1000
            count[op] += 1
    return {op: ms / runs for op, ms in total.items()}, Counter({op: n // runs for op, n in count.items()})


def profile_bundle(path: Path, precision: str | None, pairs: list, batch: int, batches: int, runs: int,
                   threads: int, seed: int = 0) -> tuple[Profile, BundleModel, list]:
    """Kernel times of ``runs`` profiled runs; returns the profile (wall time still 0), an unprofiled
    model of the same graph and the batches, for :func:`time_interleaved`."""
    bundle = load_bundle(path)
    with tempfile.TemporaryDirectory() as tmp:
        profiled = BundleModel.load(bundle, precision, intra_op_threads=threads, profile_prefix=f"{tmp}/ort")
        inputs = sample_batches(profiled, pairs, batch, batches, random.Random(seed))
        profiled.backend.predict(inputs[0])  # first-run allocation is not steady state
        for i in range(runs):
            profiled.backend.predict(inputs[i % len(inputs)])
        trace = Path(profiled.backend.session.end_profiling())
        # the warm-up run is in the trace too: count it
        kernel_ms, nodes = kernel_times(trace, runs + 1)
    timed = BundleModel.load(bundle, precision, intra_op_threads=threads)
    label = f"{bundle.manifest.name} {bundle.manifest.version} ({timed.precision})"
    return Profile(label, kernel_ms, nodes, 0.0), timed, inputs


def time_interleaved(models: list[BundleModel], inputs: list[list], runs: int) -> list[float]:
    """Median wall ms per batch of each model on its own ``inputs``, profiler off, the models taking turns
    batch by batch so a noisy neighbour slows them alike."""
    for model, batches in zip(models, inputs, strict=True):
        model.backend.predict(batches[0])
    wall: list[list[float]] = [[] for _ in models]
    for i in range(runs):
        for j, (model, batches) in enumerate(zip(models, inputs, strict=True)):
            started = time.perf_counter()
            model.backend.predict(batches[i % len(batches)])
            wall[j].append(1000 * (time.perf_counter() - started))
    return [statistics.median(w) for w in wall]


def table(profiles: list[Profile]) -> list[str]:
    ops = sorted({op for p in profiles for op in p.kernel_ms}, key=lambda op: -max(p.kernel_ms.get(op, 0) for p in profiles))
    lines = ["| operator | " + " | ".join(f"{p.label}: nodes, ms/batch (share)" for p in profiles) + " |",
             "| --- |" + " ---: |" * len(profiles)]
    for op in ops:
        cells = []
        for p in profiles:
            ms, total = p.kernel_ms.get(op, 0.0), sum(p.kernel_ms.values())
            cells.append(f"{p.nodes[op]}, {ms:.2f} ({ms / total:.0%})" if op in p.kernel_ms else "—")
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines.append("| **kernel total** | " + " | ".join(f"{sum(p.kernel_ms.values()):.1f}" for p in profiles) + " |")
    base = profiles[0].wall_ms
    lines.append("| **wall ms/batch, profiler off (vs first)** | "
                 + " | ".join(f"{p.wall_ms:.1f} ({base / p.wall_ms:.2f}x)" for p in profiles) + " |")
    return lines


def run(cfg: ProfileConfig, command: str) -> int:
    """Profile every bundle on the same batches and print the table (and write it into ``cfg.out`` if
    set); 2 if the data is missing. ``command`` is the command line recorded above the table."""
    try:
        pairs = load_pairs(cfg.data, cfg.split)
    except FileNotFoundError as err:
        print(f"profiling needs real pairs: {err}", file=sys.stderr)
        return 2
    profiled = [profile_bundle(Path(path), cfg.precision or None, pairs, cfg.batch, cfg.batches, cfg.runs,
                               cfg.threads) for path in cfg.bundles]
    profiles = [p for p, _, _ in profiled]
    walls = time_interleaved([m for _, m, _ in profiled], [b for _, _, b in profiled], cfg.runs)
    for profile, wall in zip(profiles, walls, strict=True):
        profile.wall_ms = wall
        print(f"{profile.label}: {wall:.1f} ms per batch of {cfg.batch}", flush=True)
    section = "\n".join([
        "## Where the time goes (ONNX Runtime profile by operator)", "",
        f"Command: `{command}`  ",
        (f"{cfg.runs} runs of padded batches of {cfg.batch} random `{cfg.split}` pairs ({cfg.batches} distinct), "
         f"{cfg.threads} intra-op threads; kernel times from ORT's profiler; wall time without it, bundles taking turns batch by batch."), "",
        *table(profiles), ""])
    print(section)
    if cfg.out:
        write_section(Path(cfg.out), "## Where the time goes", section)
    return 0
