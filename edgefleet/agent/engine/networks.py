"""Networks through the Engine API (``/networks/...``)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from edgefleet.agent.engine.transport import segment

if TYPE_CHECKING:
    from edgefleet.agent.engine.session import EngineSession


class Networks:
    def __init__(self, client: EngineSession) -> None:
        self.client = client

    def list(
        self, *, names: list[str] | None = None, filters: dict[str, list[str]] | None = None
    ) -> Any:
        """The matching networks' records; ``names`` matches by name (the engine
        matches parts of names too: callers compare the name they asked for)."""
        found = dict(filters or {})
        if names:
            found["name"] = names
        return self.client.json("GET", "/networks", params={"filters": found or None}) or []

    def inspect(self, network: str) -> Any:
        return self.client.json("GET", f"/networks/{segment(network)}")

    def create(
        self,
        name: str,
        *,
        driver: str = "bridge",
        internal: bool = False,
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> Any:
        """``{"Id"}`` of the new network; ``internal``: no route out of it."""
        body: dict[str, Any] = {"Name": name, "Driver": driver}
        if options:
            body["Options"] = options
        if labels:
            body["Labels"] = labels
        if internal:
            body["Internal"] = True
        return self.client.json("POST", "/networks/create", json_body=body)

    def connect(
        self, network: str, container: str, aliases: builtins.list[str] | None = None
    ) -> None:
        endpoint = {"Aliases": aliases} if aliases else {}
        body = {"Container": container, "EndpointConfig": endpoint}
        self.client.call("POST", f"/networks/{segment(network)}/connect", json_body=body).read()

    def remove(self, network: str) -> None:
        self.client.call("DELETE", f"/networks/{segment(network)}").read()
