"""Throughput of the student under PyTorch eager, ONNX Runtime fp32 and ONNX Runtime INT8.

    python -m export.bench models/default --checkpoint runs/student/best --data ../shared/data/homedepot

Every runtime scores the *same* batches of real pairs (random test-split pairs, so padding is what a
request would see), with the same number of threads, in one run; the table reports pairs/s, the
median batch latency and the speed-up over PyTorch, and is written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import platform
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="PyTorch checkpoint (default: the bundle's source)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/homedepot"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-sizes", default="1,8,32,64")
    parser.add_argument("--batches", type=int, default=20, help="distinct batches per batch size")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="timed seconds per cell")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)

    bundle = load_bundle(args.bundle)
    try:
        pairs = load_pairs(args.data, args.split)
    except FileNotFoundError as err:
        print(f"benchmark needs real pairs: {err}", file=sys.stderr)
        return 2
    checkpoint = args.checkpoint or Path(bundle.manifest.source_checkpoint)
    runners: dict[str, Runner] = {}
    if checkpoint.is_dir():
        runners["PyTorch eager fp32"] = torch_runner(checkpoint, args.threads)
    else:
        print(f"no PyTorch checkpoint at {checkpoint}: the PyTorch column is skipped", file=sys.stderr)
    models = {p: BundleModel.load(bundle, p, intra_op_threads=args.threads) for p in ("fp32", "int8")
              if any(g.precision == p for g in bundle.manifest.graphs)}
    runners |= {f"ORT {p}": m.backend.predict for p, m in models.items()}
    encoder = next(iter(models.values()))

    rng = random.Random(0)
    rows = []
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        batches = sample_batches(encoder, pairs, bs, args.batches, rng)
        cells = {name: time_runner(run, batches, args.min_seconds) for name, run in runners.items()}
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
    command = "python -m export.bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    section = "\n".join([
        f"## Student throughput: PyTorch vs ONNX Runtime ({bundle.manifest.name} {bundle.manifest.version})",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {args.threads} threads per runtime, "
        f"random `{args.split}` pairs (mean {np.mean([len(encoder.encode([p.query], [p.service])[0][0]) for p in pairs[:2000]]):.1f} tokens), "
        f"{args.batches} distinct batches per size, >= {args.min_seconds:.0f} s per cell.",
        "",
        *lines,
        "",
    ])
    print(section)
    write_section(args.out, "## Student throughput", section)
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


if __name__ == "__main__":
    raise SystemExit(main())
