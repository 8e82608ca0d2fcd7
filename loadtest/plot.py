"""The load tests' plots (PNG, matplotlib): latency vs throughput of a step search (``loadtest.run``),
goodput and shed rates against overload (``loadtest.overload``), and the shared setup."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadtest.search import Search

MATPLOTLIB_HINT = "the plot needs matplotlib: pip install matplotlib (the project's [train] extra has it)"


class PlotUnavailable(RuntimeError):
    pass


def pyplot() -> Any:
    """``matplotlib.pyplot`` drawing to files (the Agg backend); :class:`PlotUnavailable` with the install
    hint when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(MATPLOTLIB_HINT) from None
    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def latency_plot(result: Search, target_ms: float, path: Path, title: str) -> Path:
    """p50 and p99 of the primary traffic against its achieved pairs/s, one point per step (crosses
    for bad steps), the target as a line and the best good step circled. Log latency axis: an
    overloaded step's seconds would flatten the interesting part otherwise."""
    plt = pyplot()
    from matplotlib.ticker import LogFormatter

    steps = sorted(result.steps, key=lambda s: s.offered_pairs_s)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name, attr, color in (("p50", "p50_ms", "tab:blue"), ("p99", "p99_ms", "tab:red")):
        points = [(s.achieved_pairs_s, getattr(s.primary, attr), s.meets) for s in steps]
        points = [p for p in points if not math.isinf(p[1])]
        if not points:
            continue
        ax.plot([p[0] for p in points], [p[1] for p in points], "-", color=color, alpha=0.6, label=name)
        for good in (True, False):
            sub = [p for p in points if p[2] is good]
            ax.plot([p[0] for p in sub], [p[1] for p in sub], "o" if good else "x", color=color, markersize=6)
    ax.axhline(target_ms, color="black", linestyle="--", linewidth=1, label=f"p99 target {target_ms:g} ms")
    best = result.best
    if best is not None:
        ax.plot(
            [best.achieved_pairs_s],
            [best.primary.p99_ms],
            "o",
            markersize=14,
            markerfacecolor="none",
            markeredgecolor="green",
            label=f"max under target: {best.achieved_pairs_s:.0f} pairs/s",
        )
    ax.plot([], [], "o", color="gray", label="good step")
    ax.plot([], [], "x", color="gray", label="bad step (p99, errors or sheds over the limits)")
    ax.set_yscale("log")
    # plain numbers (not 10^x); minor ticks labelled only over a narrow range
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.6)))
    ax.set_xlabel("achieved throughput (pairs/s, POST /relevance)")
    ax.set_ylabel("latency from scheduled send (ms)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(plt, fig, path)


def overload_plot(report: dict[str, Any], path: Path) -> Path:
    """Goodput (with offered load and R) and the shed and late rates against the offered multiple of R."""
    plt = pyplot()
    from matplotlib.ticker import LogFormatter, NullLocator

    steps = report["steps"]
    x = [s["multiple"] for s in steps]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    left.plot(x, [s["offered_pairs_s"] for s in steps], "--", color="grey", label="offered")
    left.plot(x, [s["goodput_pairs_s"] for s in steps], "o-", color="tab:green", label="goodput (on time)")
    left.axhline(report["raw_pairs_s"], color="tab:blue", alpha=0.5, label="raw compute rate R")
    left.set(xscale="log", yscale="log", xlabel="offered load / R", ylabel="pairs/s", title="goodput")
    left.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))  # plain numbers, not 10^x
    left.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.6)))
    right.plot(x, [100 * s["shed_share"] for s in steps], "o-", color="tab:orange", label="shed (503)")
    right.plot(
        x, [100 * s["late_share"] for s in steps], "o-", color="tab:red", label="admitted late (of 200s)"
    )
    right.axhline(1, color="tab:red", alpha=0.3, linestyle=":", label="1% (late promise)")
    right.set(xscale="log", xlabel="offered load / R", ylabel="% of requests", title="shed and late")
    for ax in (left, right):
        ax.set_xticks(x, [f"{m:g}x" for m in x])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"relevance service under overload, X-Deadline-Ms {report['traffic']['deadline_ms']:g}")
    return _save(plt, fig, path)


def pareto_plot(rows: list[dict[str, Any]], split: str, path: Path) -> Path:
    """Quality against raw speed, one point per bundle of ``loadtest.pareto``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for r in rows:  # a legend, not labels by the points: bundles often sit at nearly the same spot
        label = (f"{Path(r['bundle']).name}: {r['layers'] or '?'} layers, {r['max_length']} tokens, "
                 f"{r['lone_p50_ms']} ms lone")
        ax.scatter(r["raw_pairs_s"], r["macro_f1"], s=40, label=label)
    ax.legend(fontsize=8, loc="best")
    ax.set(xlabel="raw ONNX Runtime pairs/s (higher is faster)", ylabel=f"{split} macro-F1",
           title="quality against speed")
    ax.grid(alpha=0.3)
    ax.margins(x=0.35, y=0.2)
    return _save(plt, fig, path)
