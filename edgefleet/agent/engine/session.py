"""One engine's API: its version, the paths that carry it, error answers raised.

Works against Docker, Podman's compatible API and balenaEngine. Every call is
blocking (callers run it in a worker thread) and raises only
:mod:`~edgefleet.agent.engine.errors`. The API version is asked of the engine
once (``GET /version``) and every later path carries it (``/v1.41/...``), as
the docker SDK did with ``version="auto"``; ``/_ping`` and ``/version`` are
unversioned, and Podman's own API (``/v4.0.0/libpod/...``) is reached with
``versioned=False``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from edgefleet.agent.engine.errors import EngineError, api_error
from edgefleet.agent.engine.transport import DEFAULT, Body, Response, Transport, query

MIN_VERSION = (1, 30)  # Mounts in HostConfig


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class EngineSession:
    """Requests to one engine at its API version; what every noun calls through."""

    def __init__(self, url: str, timeout: float | None = 120.0) -> None:
        self.url = url
        self.transport = Transport(url, timeout)
        self._version: str | None = None
        self._lock = threading.Lock()

    @property
    def timeout(self) -> float | None:
        return self.transport.timeout

    @property
    def api_version(self) -> str:
        """The engine's API version (``1.41`` for Podman 4), asked once."""
        with self._lock:
            if self._version is None:
                found = str(self.version().get("ApiVersion") or "")
                if _numbers(found) < MIN_VERSION:
                    raise EngineError(
                        f"the engine at {self.url} speaks API version {found or '?'}; "
                        f"the agent needs {'.'.join(map(str, MIN_VERSION))} or newer"
                    )
                self._version = found
            return self._version

    def path(self, path: str, params: dict[str, Any] | None = None, versioned: bool = True) -> str:
        prefix = f"/v{self.api_version}" if versioned else ""
        return prefix + path + query(params)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Body = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = DEFAULT,
        versioned: bool = True,
    ) -> Response:
        """A request whose error answer (4xx, 5xx) is raised as an APIError; the
        response otherwise, its body not read yet."""
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        target = self.path(path, params, versioned)
        answer = self.transport.request(method, target, headers=headers, body=body, timeout=timeout)
        if answer.status >= 400:
            raise api_error(answer.status, answer.read(), f"{method} {path}")
        return answer

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`call`, its body decoded as JSON (None for an empty one)."""
        text = self.call(method, path, **kwargs).read()
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise EngineError(f"{method} {path}: the engine's answer is not JSON") from exc

    def ping(self) -> bool:
        """True if the engine answers ``/_ping`` with OK."""
        answer = self.transport.request("GET", "/_ping")
        return answer.status == 200 and answer.read().strip() == b"OK"

    def version(self) -> dict[str, Any]:
        """``GET /version``: ApiVersion, Components (Podman names itself there)."""
        found = self.json("GET", "/version", versioned=False)
        return found if isinstance(found, dict) else {}

    def close(self) -> None:
        """Nothing is held between calls (a connection per request)."""
