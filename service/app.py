"""``create_app(settings)``: assembles the FastAPI app around one engine, which loads and warms up the
models in the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import routes
from service.engine import build_engine
from service.error_responses import install_error_handlers
from service.metrics import ServiceMetrics
from service.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from service.settings import Settings, get_settings
from service.variant import BackendWrapper

DESCRIPTION = """Scores (query, service) pairs with a distilled BERT relevance model inside a latency budget.

Pairs from concurrent requests are batched dynamically. Deadlines:

* with `X-Deadline-Ms: D` the deadline is the caller's: a request that cannot be scored within `D` ms
  of arrival is refused at once (`503 deadline_unmeetable`, `Retry-After`), queued work that can no
  longer finish in time is dropped (`503 expired_in_queue`), and admitted work is answered by then;
* without the header, `default_deadline_ms` bounds only how long a request may wait behind others
  before its compute starts, so a lone request of any size up to `max_services` is answered on an
  idle server while overload still sheds fast.

The response's `budget` says which applied; `GET /admission` shows the estimate behind a refusal.
`X-AB-Bucket` picks the A/B variant. Errors share one JSON shape:
`{"error", "message", "request_id", "fields"}`.
"""


def create_app(settings: Settings | None = None, *, wrap_backend: BackendWrapper | None = None) -> FastAPI:
    """The service app. ``wrap_backend(variant, backend)`` lets tests inject slow or failing backends."""
    settings = settings or get_settings()
    metrics = ServiceMetrics()
    limits = settings.request_limits()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(settings, metrics, wrap_backend)
        await engine.start()
        app.state.engine = engine
        try:
            yield
        finally:
            app.state.engine = None
            await engine.stop()

    app = FastAPI(title="relevance-service", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.limits = limits
    app.state.engine = None
    app.include_router(routes.router)
    install_error_handlers(app)
    # Added last = outermost: the access log and latency histogram also see requests refused for size.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=limits.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app
