"""Images through the Engine API: inspect, remove, pull, push, build.

Pull, push and build answer 200 at once and then report progress as a stream
of JSON objects; a failure (a registry's refusal, a failed build step) comes
inside that stream as ``{"error": ..., "errorDetail": ...}``, not as an HTTP
error. The callers read the stream for it; this module hands it over as it
arrives. A registry login goes in ``X-Registry-Auth`` (base64url JSON), only
when there is one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from edgefleet.agent.engine.streams import json_items
from edgefleet.agent.engine.transport import segment

if TYPE_CHECKING:
    from edgefleet.agent.engine.session import EngineSession


def auth_header(auth: dict[str, Any] | None) -> dict[str, str]:
    """``X-Registry-Auth`` for a registry login (username, password...), or none."""
    if not auth:
        return {}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()}


class Images:
    def __init__(self, client: EngineSession) -> None:
        self.client = client

    def inspect(self, image: str) -> Any:
        """The image's record; :class:`~.errors.ImageNotFound` if it is not here."""
        return self.client.json("GET", f"/images/{segment(image)}/json")

    def remove(self, image: str, *, force: bool = False) -> None:
        self.client.call("DELETE", f"/images/{segment(image)}", params={"force": force}).read()

    def pull(
        self,
        repository: str,
        tag: str | None,
        *,
        auth: dict[str, Any] | None = None,
        platform: str | None = None,
    ) -> Iterator[Any]:
        """The pull's progress items, as the engine reports them."""
        params = {"fromImage": repository, "tag": tag, "platform": platform}
        answer = self.client.call(
            "POST", "/images/create", params=params, headers=auth_header(auth)
        )
        return json_items(answer.chunks())

    def push(
        self, repository: str, tag: str, *, auth: dict[str, Any] | None = None
    ) -> Iterator[Any]:
        """The push's progress items; the pushed digest is in one of them."""
        answer = self.client.call(
            "POST",
            f"/images/{segment(repository)}/push",
            params={"tag": tag},
            headers=auth_header(auth),
        )
        return json_items(answer.chunks())

    def build(
        self,
        context: IO[bytes],
        *,
        tag: str,
        dockerfile: str | None = None,
        buildargs: dict[str, str] | None = None,
        target: str | None = None,
    ) -> Iterator[Any]:
        """Build from a plain tar ``context`` (sent as it is read); the progress
        items (``{"stream": "STEP 1/2: ..."}``). Intermediate containers are
        removed, failed ones too."""
        params = {
            "t": tag,
            "dockerfile": dockerfile,
            "buildargs": buildargs or None,
            "target": target,
            "rm": True,
            "forcerm": True,
        }
        answer = self.client.call(
            "POST",
            "/build",
            params=params,
            body=context,
            headers={"Content-Type": "application/x-tar"},
        )
        return json_items(answer.chunks())
