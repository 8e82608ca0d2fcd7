"""Typed service errors (cf. TEI's error enum): each carries its HTTP status, code and headers.

Every error the service answers on purpose is one of these; :mod:`service.error_responses` turns them
(and the framework's own errors) into the one JSON error body.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from service.schemas import FieldError

ShedReason = Literal["deadline_unmeetable", "expired_in_queue", "queue_full"]


class ServiceError(Exception):
    """Base of every error the service answers on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, fields: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInput(ServiceError):
    """The request is well-formed JSON but breaks a rule pydantic cannot express (e.g. a runtime cap)."""

    status = 422
    code = "invalid_input"


class PayloadTooLarge(ServiceError):
    """Too many services or too many bytes: the client must split the request."""

    status = 413
    code = "payload_too_large"


class Overloaded(ServiceError):
    """The work cannot finish inside its deadline (or the queue is full): refused now, retry later."""

    status = 503

    def __init__(self, reason: ShedReason, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.code = reason
        self.reason: ShedReason = reason
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        # Retry-After takes whole seconds (RFC 9110); never 0, which would invite an instant retry storm.
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class NotReady(ServiceError):
    """Models are not loaded yet or the server is draining."""

    status = 503
    code = "not_ready"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class InferenceFailed(ServiceError):
    """The model runtime raised: a server fault, reported without internals."""

    status = 500
    code = "inference_failed"
