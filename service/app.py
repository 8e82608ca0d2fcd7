"""``create_app(settings)``: assembles the FastAPI app; the models load and warm up in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import routes
from service.errors import install_error_handlers
from service.metrics import ServiceMetrics
from service.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from service.runtime import build_runtime
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings, metrics, wrap_backend)
        await runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            app.state.runtime = None
            await runtime.stop()

    app = FastAPI(title="relevance-service", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.runtime = None
    app.include_router(routes.router)
    install_error_handlers(app)
    # Added last = outermost: the access log and latency histogram also see requests refused for size.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app
