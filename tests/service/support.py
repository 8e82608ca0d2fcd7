"""Service test helpers: an app running its lifespan behind httpx's ASGI transport, a backend wrapper
that tests make slow or failing at run time (the real ORT backend does the maths), request bodies and a
Prometheus text reader."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import numpy as np
from fastapi import FastAPI

from relevance.backends import Backend
from service.app import create_app
from service.settings import Settings


class ControlledBackend:
    """A real backend with knobs: ``delay`` seconds per run plus ``delay_per_token`` per padded token
    (a run's cost grows with its shape, as ORT's does), ``fail`` to raise; records batch sizes."""

    def __init__(self, inner: Backend, delay: float = 0.0, delay_per_token: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.delay_per_token = delay_per_token
        self.fail = False
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            self.batch_sizes.append(len(inputs["input_ids"]))
        delay = self.delay + self.delay_per_token * inputs["input_ids"].size
        if delay:
            time.sleep(delay)
        if self.fail:
            raise RuntimeError("injected backend failure")
        return self.inner.predict(inputs)


class Backends(dict[str, ControlledBackend]):
    """variant name -> its ControlledBackend; pass ``.wrap`` to ``create_app(wrap_backend=...)``.
    ``delay`` and ``delay_per_token`` apply from the start, so warm-up profiles them."""

    def __init__(self, delay: float = 0.0, delay_per_token: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.delay_per_token = delay_per_token

    def wrap(self, variant: str, backend: Backend) -> Backend:
        self[variant] = ControlledBackend(backend, self.delay, self.delay_per_token)
        return self[variant]


@asynccontextmanager
async def running(
    settings: Settings, backends: Backends | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan run (bundles loaded, warmed, batchers started) and a client for it."""
    app = create_app(settings, wrap_backend=backends.wrap if backends is not None else None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service", timeout=30) as client:
            yield app, client


def services(n: int, start: int = 0) -> list[dict]:
    """Candidate services drawn from the tiny model's vocabulary, of varied lengths."""
    items = ["drill", "hammer", "primer", "hose", "faucet", "saw", "stain", "mower", "valve", "brush"]
    brands = ["dewalt", "behr", "ryobi", "moen", "kohler", "delta"]
    out = []
    for i in range(start, start + n):
        extra = " ".join(["cordless", "steel", "heavy", "duty", "white"][: i % 6])
        out.append(
            {
                "id": f"s{i}",
                "title": f"{brands[i % len(brands)]} {extra} {items[i % len(items)]} kit".strip(),
                "brand": brands[i % len(brands)],
                "description": f"{items[(i * 7) % len(items)]} for the garden",
            }
        )
    return out


def body(query: str = "cordless drill", n: int = 4, start: int = 0, **extra) -> dict:
    return {"query": query, "services": services(n, start), **extra}


def metric_value(text: str, metric: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0.0 if the series is absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def scrape(client: httpx.AsyncClient, metric: str, **labels: str) -> float:
    return metric_value((await client.get("/metrics")).text, metric, **labels)


async def requests_counted(client: httpx.AsyncClient, variant: str, status: str, endpoint: str = "/relevance") -> float:
    """How many requests the latency histogram counted for this endpoint, variant and status."""
    return await scrape(client, "relevance_request_duration_seconds_count", endpoint=endpoint, variant=variant,
                        status=status)
