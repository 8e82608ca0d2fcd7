"""The comparison of CRSD and its baselines: presets x seeds, one metrics file per run, tables and a plot for the docs.

    relevance compare --annotations artifacts/annotations/pool.jsonl \\
        --teacher-metrics artifacts/teacher/test_metrics.json --seeds 13,14,15

Every run goes through :func:`training.crsd.train_crsd` with one of :data:`training.config.PRESETS`
and the same common settings (student, steps per epoch, dev-based selection). Each writes
``<record>/<preset>/seed-<seed>/metrics.json`` (dev and test metrics, parameter counts, the
command; ``record`` defaults to ``results``, where the checkpoints go); finished runs are skipped on
a rerun, so an interrupted comparison resumes. The renderer reads only those files, so every number
in the docs comes from a file the command reproduces. Point ``record`` at a committed folder
(``artifacts/compare/...``) and the few-KB metrics outlive the checkpoints: seeds can then be added
in a later session without retraining the runs already recorded.

Teacher metrics file (``--teacher-metrics``): JSON with the teacher's test metrics under ``"test"``
(or at the top level) in :func:`relevance.metrics.evaluate`'s format, and optionally ``"teacher"``
(name), ``"parameters"`` and ``"latency_ms"`` (CPU ms per pair).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import defaultdict
from pathlib import Path

from relevance.labels import LABELS

METRICS_FILE = "metrics.json"
LATENCY_FILE = "latency.json"
MAIN_METRICS = (("macro_f1", "macro-F1"), ("accuracy", "accuracy"), ("ndcg@10", "NDCG@10"), ("rmse", "RMSE"))


def run_comparison(
    presets: list[str],
    seeds: list[int],
    results: str | Path,
    common: dict,
    force: bool = False,
    command: str | None = None,
    latency_pairs: int = 100,
    record: str | Path | None = None,
) -> list[Path]:
    """Train every preset x seed not yet recorded; return the metrics files of all requested runs."""
    from accelerate import PartialState

    from training.config import PRESETS, CRSDConfig
    from training.crsd import train_crsd, training_pairs

    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ValueError(f"unknown presets {unknown}; choose from {', '.join(PRESETS)}")
    results = Path(results)
    record = Path(record) if record else results
    budget = None
    if any(PRESETS[p].equal_budget for p in presets):
        # as many pairs as the teacher-label runs train on: the usable annotated pool pairs
        budget = len(training_pairs(CRSDConfig.from_preset("teacher_hard", **common))[0])
    files = []
    for preset in presets:
        for seed in seeds:
            run_dir = results / preset / f"seed-{seed}"
            path = record / preset / f"seed-{seed}" / METRICS_FILE
            files.append(path)
            overrides = {**common, "out": str(run_dir), "seed": seed}
            if PRESETS[preset].equal_budget:
                overrides["limit_train"] = budget
            cfg = CRSDConfig.from_preset(preset, **overrides)
            if path.is_file() and not force:
                check_recorded_settings(path, cfg.to_json())
                continue
            report = train_crsd(cfg, command)
            if PartialState().is_main_process:
                metrics = {
                    "preset": preset,
                    "description": PRESETS[preset].description,
                    "seed": seed,
                    "checkpoint": str(run_dir / "best"),
                    "command": command,
                    **{k: report[k] for k in ("dev", "test", "parameters", "distillation", "n_train", "steps",
                                              "train_seconds", "config") if k in report},
                }
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(metrics, indent=2))
    if latency_pairs and PartialState().is_main_process and not (record / LATENCY_FILE).is_file():
        # every run is the same student architecture: time the first whose checkpoint is still here
        runs = [json.loads(f.read_text()) for f in files if f.is_file()]
        run = next((r for r in runs if Path(r["checkpoint"]).is_dir()), None)
        if run is not None:
            cfg = run["config"]
            latency = student_cpu_latency(run["checkpoint"], cfg["data"], cfg["test_split"] or cfg["dev_split"],
                                          latency_pairs, threads=1)
            (record / LATENCY_FILE).write_text(json.dumps(latency, indent=2))
    return files


# where the run's files go, how many threads it used, and the student's folder (an absolute path
# that moves with the virtual environment) do not change what a run measures
UNCOMPARED_SETTINGS = ("out", "threads", "init")


def check_recorded_settings(path: Path, wanted: dict) -> None:
    """Refuse to skip to a recorded run of other settings: its row would mix, e.g., 2- and 3-epoch seeds."""
    recorded = json.loads(path.read_text()).get("config", {})
    wanted = json.loads(json.dumps(wanted))  # the recorded side went through JSON (tuples became lists)
    differ = [f"{k}={recorded[k]!r} (now {wanted[k]!r})" for k in wanted
              if k not in UNCOMPARED_SETTINGS and k in recorded and recorded[k] != wanted[k]]
    if differ:
        raise ValueError(f"{path} was recorded with other settings: {', '.join(differ)}; rerun with the recorded "
                         "settings, pass --force to retrain it, or --record another folder")


def student_cpu_latency(checkpoint: str | Path, data: str, split: str, n: int = 100, threads: int = 1) -> dict:
    """Median and p95 ms of one pair (batch 1) through the PyTorch student on CPU, over ``n`` pairs."""
    import torch

    from relevance.bundle.manifest import ServiceTextTemplate
    from relevance.data import load_pairs
    from relevance.encoding import PairEncoder
    from training.batching import to_tensors
    from training.student import STUDENT_META, encode_pairs, load_student

    checkpoint = Path(checkpoint)
    meta = json.loads((checkpoint / STUDENT_META).read_text())
    encoder = PairEncoder.from_file(checkpoint / "tokenizer.json", meta["max_length"])
    data_pairs = encode_pairs(encoder, ServiceTextTemplate(**meta["text"]), load_pairs(data, split, limit=n))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    model = load_student(checkpoint).eval()
    times = []
    try:
        with torch.inference_mode():
            for i, example in enumerate([data_pairs.examples[0], *data_pairs.examples]):
                inputs = to_tensors(encoder.pad([example]))
                started = time.perf_counter()
                model(**inputs)
                if i:  # the first call warms up
                    times.append(1000 * (time.perf_counter() - started))
    finally:
        torch.set_num_threads(previous)
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))],
            "pairs": len(times), "threads": threads, "runtime": "PyTorch eager fp32, batch 1", "split": split}


# --- rendering ------------------------------------------------------------------------------------


def load_runs(results: str | Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(results).glob(f"*/seed-*/{METRICS_FILE}"))]


def read_teacher_metrics(path: str | Path | None) -> dict | None:
    """The teacher's test metrics, from ``relevance teacher eval --out`` or a file with them under ``"test"``.

    Teacher eval puts the headline numbers (failures counted as wrong) at the top level and NDCG /
    RMSE under ``"parsed_only"``; its ``pairs_per_s`` gives an amortised ms per pair.
    """
    if not path:
        return None
    raw = json.loads(Path(path).read_text())
    test = raw["test"] if isinstance(raw.get("test"), dict) else raw
    if "macro_f1" not in test:
        raise ValueError(f"{path}: no teacher test metrics (expected 'macro_f1' under 'test' or at the top level)")
    test = {**test.get("parsed_only", {}), **{k: v for k, v in test.items() if k != "parsed_only"}}
    name = raw.get("teacher") or raw.get("name") or "teacher"
    if isinstance(name, dict):
        name = " ".join(str(name[k]) for k in ("name", "version") if name.get(k)) or "teacher"
    latency, note = raw.get("latency_ms"), ""
    if latency is None and raw.get("pairs_per_s"):
        latency, note = 1000.0 / raw["pairs_per_s"], " (1 / pairs per s of batched generation)"
    split = raw.get("split", "test")
    return {"test": test, "name": str(name) + ("" if split == "test" else f" [{split} split!]"),
            "parameters": raw.get("parameters"), "latency_ms": latency, "latency_note": note,
            "n": test.get("n"), "balanced": raw.get("balanced")}


def _stats(values: list[float]) -> tuple[float, float, int]:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return float("nan"), float("nan"), 0
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0), len(values)


def _fmt(values: list[float], digits: int = 4, scale: float = 1.0, suffix: str = "") -> str:
    mean, std, n = _stats([v * scale if v is not None else None for v in values])
    if n == 0:
        return "n/a"
    return f"{mean:.{digits}f}{suffix}" + (f" ± {std:.{digits}f}" if n > 1 else "")


def group_runs(runs: list[dict]) -> dict[str, list[dict]]:
    from training.config import PRESETS

    groups: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        groups[run["preset"]].append(run)
    order = [p for p in PRESETS if p in groups] + sorted(p for p in groups if p not in PRESETS)
    return {p: sorted(groups[p], key=lambda r: r["seed"]) for p in order}


def dev_best(groups: dict[str, list[dict]]) -> tuple[str, dict]:
    """The preset with the best mean dev macro-F1 and, within it, its dev-best seed's run."""
    preset = max(groups, key=lambda p: _stats([r["dev"]["macro_f1"] for r in groups[p]])[0])
    return preset, max(groups[preset], key=lambda r: r["dev"]["macro_f1"])


def render_markdown(runs: list[dict], teacher: dict | None = None, latency: dict | None = None,
                    plot_path: str | None = None) -> str:
    """The results block: main table, per-class F1, model sizes and latency, dev-best run."""
    if not runs:
        return "_No finished runs._\n"
    groups = group_runs(runs)
    seeds = sorted({r["seed"] for r in runs})
    t_f1 = teacher["test"]["macro_f1"] if teacher else None
    lines = [f"Test split, mean ± std over seeds {', '.join(map(str, seeds))}"
             if len(seeds) > 1 else f"Test split, one seed ({seeds[0]}): no spread is reported.", ""]
    head = "| run | seeds | train pairs | steps | " + " | ".join(t for _, t in MAIN_METRICS)
    lines += [head + " | retention | dev macro-F1 |", "|" + " --- |" * (len(MAIN_METRICS) + 6)]
    if teacher:
        sample = f" ({teacher['n']} test pairs{', class-balanced sample' if teacher.get('balanced') else ''})" \
            if teacher.get("n") else ""
        lines.append(f"| teacher: {teacher['name']}{sample} | - | - | - | "
                     + " | ".join(_fmt([teacher["test"].get(k)]) for k, _ in MAIN_METRICS) + " | 100% | - |")
    for preset, rs in groups.items():
        retention = _fmt([r["test"]["macro_f1"] / t_f1 for r in rs], 1, 100, "%") if t_f1 else "n/a"
        lines.append(
            f"| `{preset}`: {rs[0].get('description', '')} | {len(rs)} | {rs[0].get('n_train', '')} | "
            f"{rs[0].get('steps', '')} | " + " | ".join(_fmt([r["test"].get(k) for r in rs]) for k, _ in MAIN_METRICS)
            + f" | {retention} | {_fmt([r['dev']['macro_f1'] for r in rs])} |"
        )
    lines += ["", "Per-class F1 (test):", "", "| run | " + " | ".join(LABELS) + " |", "|" + " --- |" * (len(LABELS) + 1)]
    if teacher:
        lines.append("| teacher | " + " | ".join(_fmt([teacher["test"]["f1"].get(c)]) for c in LABELS) + " |")
    for preset, rs in groups.items():
        lines.append(f"| `{preset}` | " + " | ".join(_fmt([r["test"]["f1"][c] for r in rs]) for c in LABELS) + " |")

    params = next((r["parameters"] for r in runs if r.get("parameters")), {})
    student_params = params.get("student")
    lines += ["", "| model | parameters | CPU latency per pair |", "| --- | --- | --- |"]
    if teacher:
        t_lat = (f"{teacher['latency_ms']:.1f} ms{teacher.get('latency_note', '')}" if teacher.get("latency_ms")
                 else "n/a (not in the teacher metrics file)")
        t_par = f"{teacher['parameters']:,}" if teacher.get("parameters") else "n/a"
        lines.append(f"| teacher: {teacher['name']} | {t_par} | {t_lat} |")
    s_lat = (f"{latency['median_ms']:.2f} ms median, {latency['p95_ms']:.2f} ms p95 ({latency['runtime']}, "
             f"{latency['threads']} thread, {latency['pairs']} pairs)") if latency else "n/a"
    lines.append(f"| student (every run) | {student_params:,} | {s_lat} |" if student_params else f"| student | n/a | {s_lat} |")
    if params.get("train_only_projection_head"):
        lines.append(f"| CRSD projection head (training only, not exported) | {params['train_only_projection_head']:,} | - |")
    if teacher and teacher.get("parameters") and student_params:
        ratio = f"{teacher['parameters'] / student_params:.1f}x parameters"
        if teacher.get("latency_ms") and latency:
            ratio += f", {teacher['latency_ms'] / latency['median_ms']:.0f}x latency"
        lines += ["", f"Compression (teacher / student): {ratio}."]
    preset, best = dev_best(groups)
    lines += ["", f"Dev-best: `{preset}` (mean dev macro-F1 {_fmt([r['dev']['macro_f1'] for r in groups[preset]])}); "
              f"its dev-best seed {best['seed']} is `{best['checkpoint']}`."]
    commands = sorted({r["command"] for r in runs if r.get("command")})
    if commands:
        lines += ["", "Produced by:", "", *[f"    {c}" for c in commands]]
    if plot_path:
        lines += ["", f"![test macro-F1 per run]({plot_path})"]
    return "\n".join(lines) + "\n"


def plot_comparison(runs: list[dict], path: str | Path, teacher: dict | None = None, title: str = "") -> Path:
    """Bar chart of test macro-F1 (mean ± std over seeds) per preset, the teacher as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_runs(runs)
    stats = [_stats([r["test"]["macro_f1"] for r in rs]) for rs in groups.values()]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups)), 4.0))
    colors = ["#4c72b0" if p.startswith("crsd") else "#8c8c8c" for p in groups]
    ax.bar(range(len(groups)), [s[0] for s in stats], yerr=[s[1] for s in stats], color=colors, capsize=4)
    ax.set_xticks(range(len(groups)), list(groups), rotation=30, ha="right")
    ax.set_ylabel("test macro-F1")
    if teacher:
        ax.axhline(teacher["test"]["macro_f1"], color="#c44e52", linestyle="--", label=f"teacher ({teacher['name']})")
        ax.legend(loc="lower right")
    ax.set_title(title or "Student on the test split (mean ± std over seeds)")
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Write a matplotlib figure as the PNG the docs link to, and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def link_from(doc: str | Path, target: str | Path) -> str:
    """How ``doc`` links to ``target``: relative when it lies below the doc's folder, else as given."""
    doc_dir, target_path = Path(doc).resolve().parent, Path(target).resolve()
    return target_path.relative_to(doc_dir).as_posix() if target_path.is_relative_to(doc_dir) else str(target)


def write_section(doc: str | Path, section: str, content: str) -> Path:
    """Replace the block between this section's markers in ``doc`` (append it where there is none)."""
    begin, end = f"<!-- results:{section} begin -->", f"<!-- results:{section} end -->"
    doc = Path(doc)
    text = doc.read_text() if doc.is_file() else ""
    block = f"{begin}\n{content.rstrip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    return doc


def render(record: str | Path, doc: str | Path, section: str = "homedepot", plot: str | Path | None = None,
           teacher_metrics: str | Path | None = None, title: str = "") -> Path:
    """Tables (and the plot) of every run recorded under ``record`` into ``doc``'s ``section``."""
    runs = load_runs(record)
    teacher = read_teacher_metrics(teacher_metrics)
    latency_file = Path(record) / LATENCY_FILE
    latency = json.loads(latency_file.read_text()) if latency_file.is_file() else None
    plot_ref = None
    if plot and runs:
        plot_comparison(runs, plot, teacher, title)
        plot_ref = link_from(doc, plot)
    return write_section(doc, section, render_markdown(runs, teacher, latency, plot_ref))
