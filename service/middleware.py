"""Pure ASGI middleware (cheaper than ``BaseHTTPMiddleware``, which runs each request in a new task).

* :class:`ObservabilityMiddleware`: request id (``X-Request-Id`` in, generated otherwise, echoed out),
  the in-flight gauge, the request latency histogram and one JSON access-log line per request.
* :class:`BodyLimitMiddleware`: refuses bodies over ``max_body_bytes`` with 413 before they are read.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.error_responses import error_json
from service.logs import ACCESS_LOGGER
from service.metrics import ServiceMetrics
from service.schemas import REQUEST_ID_PATTERN

access_log = logging.getLogger(ACCESS_LOGGER)

# Only the scoring endpoints feed the latency histogram (label: the path, as dashboards and alerts query
# it): probes and scrapes would drown its low buckets.
MEASURED_ENDPOINTS = {"/relevance", "/relevance/shadow"}
QUIET_PATHS = {"/metrics", "/healthz", "/readyz"}
_SAFE_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` for bodies without Content-Length; FastAPI re-raises HTTPExceptions."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the {limit}-byte limit")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            # Answered here, before reading a byte of it (outside FastAPI's handlers, hence by hand).
            scope.setdefault("state", {})["error"] = "payload_too_large"
            response = error_json(
                413,
                "payload_too_large",
                BodyTooLarge(self.max_body_bytes).detail,
                scope.get("state", {}).get("request_id"),
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        await self.app(scope, limited_receive, send)


def request_id_from(scope: Scope) -> str:
    """The caller's X-Request-Id when it is a sane token (it ends up in logs), else a fresh one."""
    given = Headers(scope=scope).get("x-request-id")
    return given if given and _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["started"] = started = time.monotonic()
        state["request_id"] = request_id_from(scope)
        status = 500  # what the client sees if the app raises before responding

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers["X-Request-Id"] = state["request_id"]
            await send(message)

        self.metrics.in_flight_requests.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight_requests.dec()
            self._record(scope, state, status, time.monotonic() - started)

    def _record(self, scope: Scope, state: dict, status: int, seconds: float) -> None:
        path = scope.get("path", "")
        variant = state.get("variant", "none")
        if path in MEASURED_ENDPOINTS:
            self.metrics.request_duration.labels(endpoint=path, variant=variant, status=str(status)).observe(
                seconds
            )
        level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
        if access_log.isEnabledFor(level):
            client = scope.get("client")
            access_log.log(
                level,
                "access",
                extra={
                    "request_id": state["request_id"],
                    "method": scope.get("method"),
                    "path": path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "variant": variant,
                    "pairs": state.get("pairs"),
                    "cached": state.get("cached"),
                    "error": state.get("error"),
                    "client": f"{client[0]}:{client[1]}" if client else None,
                },
            )
