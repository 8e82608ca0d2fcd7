"""Fixtures of the service suite: settings on the shared ``tiny_bundle`` and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from service.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's RELEVANCE_* environment must not change what the tests see."""
    for name in list(os.environ):
        if name.startswith("RELEVANCE_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()


@pytest.fixture
def make_settings(tiny_bundle: Path) -> Callable[..., Settings]:
    def make(**overrides) -> Settings:
        # A generous default deadline: tests about deadlines send X-Deadline-Ms; the others must not
        # turn flaky (503) when a loaded CI machine is slower than the 100 ms production default.
        return Settings(bundle=tiny_bundle, **{"default_deadline_ms": 5000, **overrides})

    return make
