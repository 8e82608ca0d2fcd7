"""CRSD fixtures: a catalog with the Home Depot split names and a synthetic teacher annotation file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crsd.fixture_data import write_crsd_catalog, write_pool_annotations, write_teacher_metrics


@pytest.fixture(scope="session")
def crsd_data(tmp_path_factory) -> Path:
    return write_crsd_catalog(tmp_path_factory.mktemp("crsd-data") / "catalog.jsonl")


@pytest.fixture(scope="session")
def crsd_annotations(tmp_path_factory, crsd_data) -> Path:
    return write_pool_annotations(crsd_data, tmp_path_factory.mktemp("annotations") / "pool.jsonl")


@pytest.fixture(scope="session")
def teacher_metrics_file(tmp_path_factory, crsd_data) -> Path:
    return write_teacher_metrics(crsd_data, tmp_path_factory.mktemp("teacher") / "teacher_test.json")


@pytest.fixture()
def crsd_settings(tiny_init, crsd_data, crsd_annotations) -> dict:
    """CRSDConfig settings for the tiny BERT and the fixture data (the caller adds out, preset, seed)."""
    return dict(
        data=str(crsd_data), annotations=str(crsd_annotations), init=str(tiny_init),
        text_fields=("title", "brand", "description"), max_length=32, aug_max_length=48, batch_size=16,
        epochs=1, lr=1e-3, head_lr=1e-3, warmup_ratio=0.0, evals_per_epoch=1, threads=1,
    )
