"""docs/service.md documents every setting (with its environment variable) and every metric."""

from __future__ import annotations

from pathlib import Path

from service.metrics import ServiceMetrics
from service.settings import Settings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "service.md").read_text()


def test_every_setting_is_documented_with_its_environment_variable():
    missing = [
        name for name in Settings.model_fields if f"| `{name}` | `RELEVANCE_{name.upper()}` |" not in DOC
    ]
    assert missing == []


def test_every_metric_is_documented():
    families = list(ServiceMetrics().registry.collect())
    # prometheus_client names a counter's family without the _total its samples carry
    names = [f"{f.name}_total" if f.type == "counter" else f.name for f in families]
    missing = [n for n in names if f"| `{n}` |" not in DOC]
    assert len(names) >= 17 and missing == []
