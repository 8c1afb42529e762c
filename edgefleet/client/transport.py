"""The HTTP plumbing every part of :class:`~edgefleet.client.Client` shares.

One place turns a request into JSON or an error: httpx's errors become
:class:`~edgefleet.client.errors.ConnectionFailed`, a 4xx/5xx answer becomes
the matching :class:`~edgefleet.client.errors.ApiError`. The noun modules
(``access.py``, ``jobs.py``, …) only name paths, bodies and return types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, Self, TypeVar, cast

import httpx

from edgefleet.client.errors import ConnectionFailed, from_response
from edgefleet.client.tls import client_context

JSON = dict[str, Any]
T = TypeVar("T")


def compact(**fields: Any) -> JSON:
    """The fields that are not ``None``: optional arguments the server should
    not see at all (so its own defaults apply)."""
    return {key: value for key, value in fields.items() if value is not None}


class Transport:
    """An authenticated HTTP session to one server; closed by ``close()`` or ``with``."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        verify: bool | str = True,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=self.server, headers=headers, timeout=timeout, verify=client_context(verify)
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self.http.close()

    # -- untyped calls (any endpoint) -------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request: the decoded JSON, the raw bytes of a non-JSON answer, or
        ``None`` for an empty one. ``path`` is under ``/api/v1`` unless it starts
        with ``/api/`` or ``/proxy/``. Raises ConnectionFailed (unreachable, timed
        out) or the ApiError subclass of the answer's status."""
        url = path if path.startswith(("/api/", "/proxy/")) else f"/api/v1{path}"
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(
                f"{self.server} did not answer in time ({exc.__class__.__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"cannot reach {self.server}: {exc}") from exc
        _raise_for_status(response)
        if response.status_code == 204 or not response.content:
            return None
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.content

    def get(self, path: str, /, **params: Any) -> Any:
        """``GET`` with the query ``params`` that are not ``None``."""
        return self.request("GET", path, params=compact(**params))

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """``POST`` a JSON body."""
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any) -> Any:
        """``PATCH`` a JSON body."""
        return self.request("PATCH", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        """``PUT`` a JSON body."""
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        """``DELETE`` a resource."""
        return self.request("DELETE", path)

    def paged(self, path: str, /, *, limit: int | None = None, **params: Any) -> Iterator[JSON]:
        """Every item of a list endpoint, following ``next``; stops after ``limit`` items."""
        cursor: str | None = None
        seen = 0
        while True:
            page = self.get(path, cursor=cursor, limit=min(limit or 500, 500), **params)
            for item in page["items"]:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next")
            if not cursor:
                return

    # -- typed calls: the JSON is what the server's schema promises -------------------

    def _get(self, kind: type[T], path: str, /, **params: Any) -> T:
        return cast(T, self.get(path, **params))

    def _send(self, kind: type[T], method: str, path: str, body: Any = None, **kw: Any) -> T:
        return cast(T, self.request(method, path, json=body, **kw))

    def _paged(
        self, kind: type[T], path: str, limit: int | None = None, /, **params: Any
    ) -> Iterator[T]:
        return cast(Iterator[T], self.paged(path, limit=limit, **params))

    def _all(self, kind: type[T], path: str, limit: int | None = None, /, **params: Any) -> list[T]:
        # Positional-only: a list's filters may be called kind, path or limit (events' kind).
        return list(self._paged(kind, path, limit, **params))

    # -- streams ----------------------------------------------------------------------

    @contextmanager
    def _stream(
        self, path: str, params: dict[str, Any], timeout: httpx.Timeout
    ) -> Iterator[httpx.Response]:
        """A streamed ``GET`` whose errors are raised like :meth:`request`'s."""
        try:
            with self.http.stream(
                "GET", path, params=compact(**params), timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                _raise_for_status(response)
                yield response
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"cannot reach {self.server}: {exc}") from exc

    def stream_lines(self, path: str, **params: Any) -> Iterator[str]:
        """Lines of a streaming endpoint (logs, follow) as they arrive. Raises as
        :meth:`request` does, also when the connection breaks mid-stream."""
        url = path if path.startswith("/api/") else f"/api/v1{path}"
        with self._stream(url, params, httpx.Timeout(30, read=None)) as response:
            yield from response.iter_lines()

    def _download(
        self,
        path: str,
        params: dict[str, Any],
        sink: BinaryIO,
        progress: Callable[[bytes, int | None], None] | None,
        total_header: str,
    ) -> int:
        """Stream ``path`` into ``sink``; ``progress(chunk, total)`` where ``total``
        is the ``total_header`` the server declared. Returns the bytes written."""
        written = 0
        with self._stream(path, params, httpx.Timeout(30, read=300)) as response:
            declared = response.headers.get(total_header)
            total = int(declared) if declared and declared.isdigit() else None
            for chunk in response.iter_bytes():
                sink.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(chunk, total)
        return written

    def websocket_url(self, path: str, **params: Any) -> str:
        """The ``ws://``/``wss://`` URL of ``path`` with the query ``params`` that
        are not ``None`` (exec, port forwarding, tunnels)."""
        from urllib.parse import urlencode

        base = self.server.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
        return f"{base}{path}" + (f"?{query}" if query else "")


def _raise_for_status(response: httpx.Response) -> None:
    """Raise the ApiError of a 4xx/5xx answer, with the server's message."""
    if response.status_code < 400:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    raise from_response(response.status_code, body)
