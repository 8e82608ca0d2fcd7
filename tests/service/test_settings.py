"""Settings: defaults, RELEVANCE_* environment variables, an optional YAML/JSON file, and their order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.server import resolve_settings
from service.settings import Settings, get_settings


def test_defaults_suit_a_small_cpu_box():
    s = Settings()
    assert s.bundle == Path("models/default") and s.port == 8000 and s.providers == ["cpu"]
    assert s.max_services == 512 and s.cache_enabled and s.shadow_sample_rate == 0.0
    assert s.default_deadline_ms == 100 and s.shadow_bundle is None


def test_environment_variables_with_json_for_lists_and_dicts(monkeypatch):
    monkeypatch.setenv("RELEVANCE_MAX_WAIT_MS", "1.5")
    monkeypatch.setenv("RELEVANCE_PROVIDERS", '["cuda", "cpu"]')
    monkeypatch.setenv("RELEVANCE_VARIANTS", '{"candidate": "/models/candidate"}')
    monkeypatch.setenv("RELEVANCE_AB_BUCKETS", '{"b": "candidate"}')
    s = Settings()
    assert s.max_wait_ms == 1.5 and s.providers == ["cuda", "cpu"]
    assert s.variants == {"candidate": Path("/models/candidate")} and s.ab_buckets == {"b": "candidate"}


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_settings_file_sits_below_the_environment(monkeypatch, tmp_path, suffix):
    values = {"max_batch_pairs": 48, "cache_size": 10, "ab_buckets": {"a": "control"}}
    path = tmp_path / f"settings{suffix}"
    if suffix == ".yaml":
        yaml = pytest.importorskip("yaml")
        path.write_text(yaml.safe_dump(values))
    else:
        path.write_text(json.dumps(values))
    monkeypatch.setenv("RELEVANCE_CONFIG_FILE", str(path))
    monkeypatch.setenv("RELEVANCE_CACHE_SIZE", "99")
    s = Settings()
    assert (s.max_batch_pairs, s.cache_size, s.ab_buckets) == (48, 99, {"a": "control"})


def test_settings_file_problems_are_named(monkeypatch, tmp_path):
    monkeypatch.setenv("RELEVANCE_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        Settings()
    (tmp_path / "s.toml").write_text("")
    monkeypatch.setenv("RELEVANCE_CONFIG_FILE", str(tmp_path / "s.toml"))
    with pytest.raises(ValueError, match="yaml"):
        Settings()


def test_unknown_settings_and_bad_values_are_refused(monkeypatch, tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"max_batch_pair": 3}))
    monkeypatch.setenv("RELEVANCE_CONFIG_FILE", str(path))
    with pytest.raises(ValidationError, match="max_batch_pair"):
        Settings()
    monkeypatch.delenv("RELEVANCE_CONFIG_FILE")
    with pytest.raises(ValidationError):
        Settings(shadow_sample_rate=1.5)


def test_command_line_values_override_settings(monkeypatch):
    monkeypatch.setenv("RELEVANCE_PORT", "9000")
    monkeypatch.setenv("RELEVANCE_HOST", "127.0.0.1")
    s = resolve_settings(bundle=Path("/b"), port=8123)
    assert (s.bundle, s.host, s.port) == (Path("/b"), "127.0.0.1", 8123)
    assert get_settings().port == 9000  # the cached env view is left as it was
