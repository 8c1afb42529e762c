"""Errors of the agent's Docker Engine API client::

    EngineError                 anything the engine client could not do
     +-- EngineUnreachable      no engine at that address (also a ConnectionError,
     |                          so callers that catch OSError keep working)
     +-- APIError               the engine answered with an HTTP error
          +-- NotFound          404: no such container, network, volume, exec
               +-- ImageNotFound    404 about an image

The same shape, and the same meaning, as the ``docker`` SDK's errors the
agent caught before it spoke to the engine itself: ``NotFound`` is "absent",
an ``APIError`` carries the engine's own sentence in ``explanation``. Socket
errors and broken HTTP framing are translated here, once, at the boundary.
"""

from __future__ import annotations

import json

# What an engine says in a 404 that is about an image (the same fragments the
# docker SDK looks for, Docker's and Podman's wordings).
_IMAGE_FRAGMENTS = (
    "no such image",
    "not found: does not exist or no pull access",
    "repository does not exist",
    "was found but does not match the specified platform",
    "image not known",
)


class EngineError(Exception):
    """The engine client could not do what it was asked."""


class EngineUnreachable(EngineError, ConnectionError):
    """Nothing answers at the engine's address (socket missing, refused, timed out)."""


class APIError(EngineError):
    """The engine answered with an HTTP error; ``explanation`` is its message."""

    def __init__(self, status_code: int, explanation: str, what: str = "") -> None:
        super().__init__(f"{status_code} {what}: {explanation}" if what else explanation)
        self.status_code = status_code
        self.explanation = explanation


class NotFound(APIError):
    """404: the object does not exist."""


class ImageNotFound(NotFound):
    """404 about an image."""


def explanation_of(body: bytes) -> str:
    """The engine's sentence in an error body: Docker's ``{"message"}``, Podman's
    ``{"cause", "message"}``, or the text as it came."""
    text = body.decode(errors="replace").strip()
    try:
        found = json.loads(text)
    except ValueError:
        return text
    if isinstance(found, dict) and found.get("message"):
        return str(found["message"])
    return text


def api_error(status_code: int, body: bytes, what: str) -> APIError:
    """The error for an HTTP error answer, by status and, for a 404, by wording."""
    explanation = explanation_of(body) or f"HTTP {status_code}"
    if status_code == 404:
        lowered = explanation.lower()
        if any(fragment in lowered for fragment in _IMAGE_FRAGMENTS):
            return ImageNotFound(status_code, explanation, what)
        return NotFound(status_code, explanation, what)
    return APIError(status_code, explanation, what)
