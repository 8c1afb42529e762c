"""Calls about personal instances (a member's own copy of a launchable
application, reached through the proxy) and project volumes."""

from __future__ import annotations

from typing import BinaryIO

from edgefleet.client.models import Instance, InstanceSave, Launchable, Volume, VolumeDetail
from edgefleet.client.transport import JSON, Transport, compact


class InstanceCalls(Transport):
    # -- personal instances (issue 21) ----------------------------------------------------

    def set_launchable(
        self, app: str, idle_timeout: int = 3600, launchable: bool = True
    ) -> Launchable:
        """Let members launch personal instances of ``app``; each stops after
        ``idle_timeout`` seconds without a request through the proxy."""
        body = {"launchable": launchable, "idle_timeout": idle_timeout}
        return self._send(Launchable, "PUT", f"/applications/{app}/launchable", body)

    def launch_instance(
        self,
        app: str,
        *,
        version: str | None = None,
        device: str | None = None,
        selector: dict[str, str] | str | None = None,
    ) -> Instance:
        """Launch your own instance of a launchable application on one device (the
        one named, else the first online one matching ``selector``). Invalid when
        the application is not launchable or no device can take it."""
        body: JSON = {"app": app, **compact(version=version, device=device, selector=selector)}
        return self._send(Instance, "POST", "/instances", body)

    def instances(self) -> list[Instance]:
        """Your instances and those shared with you."""
        return self._all(Instance, "/instances")

    def instance(self, instance_id: str) -> Instance:
        """One instance; NotFound if it is neither yours nor shared with you."""
        return self._get(Instance, f"/instances/{instance_id}")

    def share_instance(self, instance_id: str, user: str) -> Instance:
        """Let ``user`` (a member of the instance's project) open your instance."""
        return self._send(Instance, "POST", f"/instances/{instance_id}/share", {"user": user})

    def unshare_instance(self, instance_id: str, user: str) -> Instance:
        """Take back ``user``'s access to your instance."""
        return self._send(Instance, "DELETE", f"/instances/{instance_id}/share/{user}")

    def stop_instance(self, instance_id: str) -> Instance:
        """Remove the instance's workload from its device."""
        return self._send(Instance, "POST", f"/instances/{instance_id}/stop", {})

    def save_instance(
        self, instance_id: str, service: str, as_: str, registry: str | None = None
    ) -> InstanceSave:
        """Start saving ``service`` of your instance as ``as_`` (``APP:VERSION``):
        the device commits its container and pushes it to the project's registry
        (``registry``, default its only one); follow it with :meth:`instance_save`.
        Forbidden unless the instance is yours; Conflict when it is stopped;
        Invalid for an unknown service or registry."""
        body: JSON = {"service": service, "as": as_, **compact(registry=registry)}
        return self._send(InstanceSave, "POST", f"/instances/{instance_id}/save", body)

    def instance_save(self, instance_id: str, save_id: str) -> InstanceSave:
        """A save's state (pushing, recording, done, failed), progress and error."""
        return self._get(InstanceSave, f"/instances/{instance_id}/saves/{save_id}")

    # -- project volumes (issue 21) -------------------------------------------------------

    def create_volume(self, name: str, project: str = "default") -> Volume:
        """Declare a project volume; Compose mounts it as
        ``{external: true, x-edgefleet-project-volume: true}``. Conflict if it exists."""
        return self._send(Volume, "POST", f"/projects/{project}/volumes", {"name": name})

    def volumes(self, project: str = "default") -> list[Volume]:
        """The project's volumes."""
        return self._all(Volume, f"/projects/{project}/volumes")

    def volume(self, name: str, project: str = "default") -> VolumeDetail:
        """The volume with its state and size on each device of the project."""
        return self._get(VolumeDetail, f"/projects/{project}/volumes/{name}")

    def delete_volume(self, name: str, project: str = "default") -> VolumeDetail:
        """Remove it from every online device of the project (409 if in use)."""
        return self._send(VolumeDetail, "DELETE", f"/projects/{project}/volumes/{name}")

    def download_volume(
        self, name: str, device: str, sink: BinaryIO, project: str = "default"
    ) -> int:
        """Write the volume's files on ``device`` as a tar to ``sink``; bytes written."""
        path = f"/api/v1/projects/{project}/volumes/{name}/archive"
        return self._download(path, {"device": device}, sink, None, "content-length")
