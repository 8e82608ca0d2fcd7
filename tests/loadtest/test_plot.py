"""The latency-vs-throughput plot: a PNG from a search, and a clear hint without matplotlib."""

from __future__ import annotations

import sys

import pytest

from loadtest.engine import EndpointStats
from loadtest.plot import PlotUnavailable, latency_plot
from loadtest.scenario import StepPlan
from loadtest.search import Search, StepResult, judge


def search_result() -> Search:
    steps = []
    for rate, p99 in [(100, 20.0), (200, 60.0), (300, float("inf")), (250, 150.0)]:
        primary = EndpointStats(
            requests=50, ok=50, pairs_s=rate * 0.97, p50_ms=p99 / 3, p95_ms=p99, p99_ms=p99
        )
        steps.append(judge(StepResult("step", rate / 32, rate, primary=primary), StepPlan(p99_target_ms=100)))
    return Search(steps, "test")


def test_plot_is_a_png(tmp_path):
    path = latency_plot(search_result(), 100, tmp_path / "sub" / "plot.png", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_the_plot_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(PlotUnavailable, match="pip install matplotlib"):
        latency_plot(search_result(), 100, tmp_path / "plot.png", "t")
