"""Domain errors of the server, each mapped to one HTTP status in one place
(:func:`install_handlers`)::

    ApiError (500)
     +-- BadRequest (400)
     +-- Unauthorized (401)      no or bad credentials
     +-- Forbidden (403)         a member, but the role does not allow it
     +-- NotFound (404)          absent, or outside the caller's projects
     +-- Conflict (409)          name taken, state does not allow it
     +-- PayloadTooLarge (413)
     +-- Invalid (422)           a field's value is wrong; ``field`` names it
     +-- TooManyRequests (429)
     +-- BadGateway (502)        the device or the app answered badly
     +-- Unavailable (503)       the device is offline, the service not running
     +-- GatewayTimeout (504)    the device or the app did not answer in time

Services raise these; routes never build error responses themselves.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        error.update(self.extra)
        body: dict[str, Any] = {"detail": self.message, "error": error}
        for key in ("findings", "conflicts"):  # top level too: scripts read them there
            if key in self.extra:
                body[key] = self.extra[key]
        return body


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class Invalid(ApiError):
    status, code = 422, "invalid"


class TooManyRequests(ApiError):
    status, code = 429, "too_many_requests"


class BadGateway(ApiError):
    status, code = 502, "bad_gateway"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class GatewayTimeout(ApiError):
    status, code = 504, "gateway_timeout"


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or str(loc[0] if loc else "request")


def validation_message(errors: list[dict[str, Any]]) -> str:
    messages = []
    for error in errors[:5]:
        where = _location(error.get("loc", ()))
        kind = error.get("type", "")
        msg = error.get("msg", "invalid")
        if kind == "extra_forbidden":
            msg = "unknown field"
        messages.append(f"{where}: {msg}")
    return "; ".join(messages)


class ErrorInfo(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """What every 4xx/5xx answers. ``detail`` is a string, or FastAPI's list of
    validation errors when the request did not match its declared model."""

    detail: str | list[dict[str, Any]]
    message: str | None = None
    error: ErrorInfo


def _document_error_shape(app: FastAPI) -> None:
    """FastAPI documents a 422 as its own ``HTTPValidationError`` (``detail``: a
    list), but our handlers answer :class:`ErrorResponse`; generated clients and
    schema checks must read the shape the server really sends."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            body = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(body.pop("$defs", {}))
            schemas["HTTPValidationError"] = body
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def api_error_response(exc: ApiError) -> JSONResponse:
    """The answer to a domain error; also for the few paths served beside the
    routing (the agents' enrollment, :mod:`edgefleet.server.gateway.enroll`)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 429 and "retry_after" in exc.extra:
        headers = {"Retry-After": str(exc.extra["retry_after"])}
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    _document_error_shape(app)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        message = validation_message(errors)
        field = _location(errors[0]["loc"]) if errors else None
        return JSONResponse(
            {
                "detail": errors,
                "message": message,
                "error": {"code": "invalid", "message": message, "field": field},
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        return JSONResponse(
            {"detail": message, "error": {"code": f"http_{exc.status_code}", "message": message}},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
