"""Containers through the Engine API (``/containers/...``, ``/commit``).

Bodies are built by the caller in the engine's own shape (see
:mod:`edgefleet.agent.runtimes.docker_config` for a container's create body);
this module only knows the paths, the parameters and what each answer holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edgefleet.agent.engine.streams import demux
from edgefleet.agent.engine.transport import segment as _segment

if TYPE_CHECKING:
    from edgefleet.agent.engine.session import EngineSession
    from edgefleet.agent.engine.transport import Response


class LogStream:
    """A container's log output as it arrives (payloads, without the frame headers
    of a container without a TTY); :meth:`close` ends it from any thread."""

    def __init__(self, response: Response, tty: bool) -> None:
        self._response = response
        self._tty = tty

    def __iter__(self) -> Iterator[bytes]:
        chunks = self._response.chunks()
        if self._tty:
            yield from chunks
        else:
            for _kind, payload in demux(chunks):
                yield payload

    def close(self) -> None:
        self._response.close()


class Containers:
    def __init__(self, client: EngineSession) -> None:
        self.client = client

    def list(self, *, all: bool = False, filters: dict[str, list[str]] | None = None) -> Any:
        """Summaries (``Id``, ``Names``, ``Labels``, ``State``...) of the matching containers."""
        params = {"all": all, "filters": filters or None}
        return self.client.json("GET", "/containers/json", params=params) or []

    def inspect(self, container: str) -> Any:
        return self.client.json("GET", f"/containers/{_segment(container)}/json")

    def create(self, body: dict[str, Any], name: str | None = None) -> Any:
        """``{"Id", "Warnings"}`` of the new container; ``body`` is the engine's
        create body (Image, Cmd, HostConfig, NetworkingConfig...)."""
        return self.client.json("POST", "/containers/create", params={"name": name}, json_body=body)

    def start(self, container: str) -> None:
        self.client.call("POST", f"/containers/{_segment(container)}/start").read()

    def stop(self, container: str, timeout: int) -> None:
        """Stop it, killing it after ``timeout`` seconds; the request waits that long."""
        wait = None if self.client.timeout is None else self.client.timeout + timeout
        self.client.call(
            "POST", f"/containers/{_segment(container)}/stop", params={"t": timeout}, timeout=wait
        ).read()

    def remove(self, container: str, *, volumes: bool = False, force: bool = False) -> None:
        params = {"v": volumes, "force": force}
        self.client.call("DELETE", f"/containers/{_segment(container)}", params=params).read()

    def commit(self, container: str, repository: str, tag: str, message: str) -> Any:
        """The container's file system as a new image ``repository:tag``: ``{"Id"}``."""
        params = {"container": container, "repo": repository, "tag": tag, "comment": message}
        return self.client.json("POST", "/commit", params=params, json_body={})

    def logs(
        self,
        container: str,
        *,
        follow: bool,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = True,
    ) -> LogStream:
        """Stdout and stderr of the container, interleaved as written. Following
        waits for new lines without a timeout (closing the stream ends it)."""
        tty = bool(((self.inspect(container) or {}).get("Config") or {}).get("Tty"))
        params: dict[str, Any] = {
            "stdout": True,
            "stderr": True,
            "timestamps": timestamps,
            "follow": follow,
            "tail": "all" if tail is None else tail,
        }
        if since is not None:
            params["since"] = int(since.timestamp())
        answer = self.client.call(
            "GET",
            f"/containers/{_segment(container)}/logs",
            params=params,
            timeout=None if follow else self.client.timeout,
        )
        return LogStream(answer, tty)
