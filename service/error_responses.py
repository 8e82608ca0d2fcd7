"""The one place errors become HTTP responses: every error body has the same JSON shape.

That shape is :class:`service.schemas.ErrorResponse`, so a client can branch on ``error`` without
parsing messages: the service's own errors (:mod:`service.errors`), pydantic's validation errors and
the ones Starlette raises itself all end here. Nothing here leaks a traceback to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import ServiceError
from service.schemas import PATTERN_MESSAGES, ErrorResponse, FieldError

log = logging.getLogger(__name__)

# Codes for the errors Starlette raises itself (unknown path, wrong method, body over the limit).
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_json(
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    fields: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error body shape, for handlers and for middleware that answers before routing."""
    body = ErrorResponse(error=code, message=message, request_id=request_id, fields=fields or [])
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers)


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    fields: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request.state.error = code  # for the access log
    return error_json(status, code, message, _request_id(request), fields, headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    """``('body', 'services', 0, 'title')`` -> ``services[0].title``: the name a client would write."""
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _message(e: dict[str, Any]) -> str:
    """pydantic's message, except a pattern's, which would read as a regex: say what the rule means."""
    if e.get("type") == "string_pattern_mismatch":
        return PATTERN_MESSAGES.get(str((e.get("ctx") or {}).get("pattern")), e.get("msg", "invalid"))
    return e.get("msg", "invalid")


def _validation_fields(err: RequestValidationError) -> list[FieldError]:
    fields = []
    for e in err.errors():
        loc = tuple(e.get("loc", ()))
        if e.get("type") == "json_invalid":  # FastAPI puts the character offset where the field would be
            fields.append(FieldError(field="body", message=f"invalid JSON at character {loc[-1]}"))
        else:
            fields.append(FieldError(field=_field_name(loc), message=_message(e)))
    return fields


def install_error_handlers(app: FastAPI) -> None:
    """Map every error type to its status once, for every route."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, exc.fields, exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _validation_fields(exc)
        names = ", ".join(dict.fromkeys(f.field for f in fields))
        message = f"invalid request: {names}"
        if "json" not in request.headers.get("content-type", ""):
            # FastAPI only parses JSON bodies sent as JSON; curl -d sends a form by default.
            message += " (send the body with Content-Type: application/json)"
        return error_response(request, 422, "invalid_input", message, fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (e.g. JSON nested too deep)
            fields = [FieldError(field="body", message=str(exc.detail))]
            return error_response(request, 422, "invalid_input", "invalid request: body", fields)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": _request_id(request)})
        return error_response(request, 500, "internal_error", "internal error; see the server log")
