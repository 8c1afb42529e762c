"""Named volumes through the Engine API (``/volumes/...``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgefleet.agent.engine.transport import segment

if TYPE_CHECKING:
    from edgefleet.agent.engine.session import EngineSession


class Volumes:
    def __init__(self, client: EngineSession) -> None:
        self.client = client

    def list(self, *, filters: dict[str, list[str]] | None = None) -> Any:
        """``{"Volumes": [...], "Warnings": [...]}`` of the matching volumes."""
        return self.client.json("GET", "/volumes", params={"filters": filters or None}) or {}

    def inspect(self, name: str) -> Any:
        """The volume's record (``Mountpoint`` is where its files are)."""
        return self.client.json("GET", f"/volumes/{segment(name)}")

    def create(self, name: str, labels: dict[str, str] | None = None) -> Any:
        body: dict[str, Any] = {"Name": name}
        if labels:
            body["Labels"] = labels
        return self.client.json("POST", "/volumes/create", json_body=body)

    def remove(self, name: str, *, force: bool = False) -> None:
        """Remove it; an engine refuses (409) while a container uses it, unless forced."""
        params = {"force": True} if force else None
        self.client.call("DELETE", f"/volumes/{segment(name)}", params=params).read()
