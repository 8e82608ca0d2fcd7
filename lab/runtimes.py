"""Throughput of the student under PyTorch eager, ONNX Runtime fp32 and ONNX Runtime INT8.

    relevance lab runtimes models/default --checkpoint runs/student/best

Every runtime scores the *same* batches of real pairs (random test-split pairs, so padding is what a
request would see), with the same number of threads, in one run; the table reports pairs/s, the
median batch latency and the speed-up over PyTorch, and is written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lab.config import RuntimesConfig
from relevance.bundle import load_bundle
from relevance.data import load_pairs
from relevance.model import BundleModel

Runner = Callable[[dict[str, np.ndarray]], object]


def time_runner(run: Runner, batches: list[dict[str, np.ndarray]], min_seconds: float) -> tuple[float, float]:
    """(pairs/s, median batch ms): warm up once, then cycle the batches for at least ``min_seconds``."""
    run(batches[0])
    latencies, pairs, started = [], 0, time.perf_counter()
    while time.perf_counter() - started < min_seconds or len(latencies) < len(batches):
        batch = batches[len(latencies) % len(batches)]
        t0 = time.perf_counter()
        run(batch)
        latencies.append(time.perf_counter() - t0)
        pairs += len(batch["input_ids"])
    return pairs / sum(latencies), 1000 * statistics.median(latencies)


def sample_batches(model: BundleModel, pairs: list, batch_size: int, count: int,
                   rng: random.Random) -> list[dict[str, np.ndarray]]:
    """``count`` padded batches of ``batch_size`` random ``pairs``, encoded as the service encodes them."""
    batches = []
    for _ in range(count):
        chunk = rng.sample(pairs, batch_size)
        batches.append(model.encoder.pad(model.encode([p.query for p in chunk], [p.service for p in chunk])))
    return batches


def torch_runner(checkpoint: Path, threads: int) -> Runner:
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(threads)
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()

    def run(batch):
        with torch.inference_mode():
            return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits

    return run


def run(cfg: RuntimesConfig, command: str) -> int:
    """Time every runtime on the same batches and write the table into ``cfg.out``; 2 if the data is missing.

    ``command`` is the command line recorded above the table (the one that reproduces it)."""
    bundle = load_bundle(cfg.bundle)
    try:
        pairs = load_pairs(cfg.data, cfg.split)
    except FileNotFoundError as err:
        print(f"benchmark needs real pairs: {err}", file=sys.stderr)
        return 2
    checkpoint = Path(cfg.checkpoint or bundle.manifest.source_checkpoint)
    runners: dict[str, Runner] = {}
    if checkpoint.is_dir():
        runners["PyTorch eager fp32"] = torch_runner(checkpoint, cfg.threads)
    else:
        print(f"no PyTorch checkpoint at {checkpoint}: the PyTorch column is skipped", file=sys.stderr)
    models = {p: BundleModel.load(bundle, p, intra_op_threads=cfg.threads) for p in ("fp32", "int8")
              if any(g.precision == p for g in bundle.manifest.graphs)}
    runners |= {f"ORT {p}": m.backend.predict for p, m in models.items()}
    encoder = next(iter(models.values()))

    rng = random.Random(0)
    rows = []
    for bs in cfg.batch_sizes:
        batches = sample_batches(encoder, pairs, bs, cfg.batches, rng)
        cells = {name: time_runner(runner, batches, cfg.min_seconds) for name, runner in runners.items()}
        rows.append((bs, cells))
        print(f"batch {bs}: " + "  ".join(f"{n} {c[0]:.0f} pairs/s" for n, c in cells.items()), flush=True)

    names = list(runners)
    base = names[0]
    header = "| batch | " + " | ".join(f"{n} pairs/s (median ms)" for n in names) + " | " + " | ".join(
        f"{n} / {base}" for n in names[1:]) + " |"
    lines = [header, "|" + " --- |" * (1 + 2 * len(names) - 1)]
    for bs, cells in rows:
        lines.append(f"| {bs} | " + " | ".join(f"{cells[n][0]:.0f} ({cells[n][1]:.1f})" for n in names) + " | "
                     + " | ".join(f"{cells[n][0] / cells[base][0]:.2f}x" for n in names[1:]) + " |")
    section = "\n".join([
        f"## Student throughput: PyTorch vs ONNX Runtime ({bundle.manifest.name} {bundle.manifest.version})",
        "",
        f"Command: `{command}`  ",
        (f"Machine: {platform.processor() or platform.machine()}, {cfg.threads} threads per runtime, "
         f"random `{cfg.split}` pairs (mean {np.mean([len(encoder.encode([p.query], [p.service])[0][0]) for p in pairs[:2000]]):.1f} tokens), "
         f"{cfg.batches} distinct batches per size, >= {cfg.min_seconds:.0f} s per cell."),
        "",
        *lines,
        "",
    ])
    print(section)
    write_section(Path(cfg.out), "## Student throughput", section)
    return 0


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section starting with ``heading`` in ``path`` (or append it), keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nEvery table below was measured by the command above it.\n\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n")
