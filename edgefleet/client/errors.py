"""Errors of the Python client::

ClientError
 +-- ConnectionFailed   the server could not be reached
 +-- ApiError           the server answered 4xx/5xx; .status, .message, .field
      +-- Unauthorized (401)  +-- Forbidden (403)  +-- NotFound (404)
      +-- Conflict (409)      +-- Invalid (422)    +-- ServerError (5xx)
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConnectionFailed(ClientError):
    pass


class ApiError(ClientError):
    status = 0

    def __init__(
        self, status: int, message: str, field: str | None = None, body: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.body = body


class Unauthorized(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Invalid(ApiError):
    pass


class ServerError(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


def from_response(status: int, body: Any) -> ApiError:
    message = f"HTTP {status}"
    field = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or message)
            field = error.get("field")
        elif isinstance(body.get("detail"), str):
            message = body["detail"]
        elif isinstance(body.get("message"), str):
            message = body["message"]
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:300]
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(status, message, field, body)
