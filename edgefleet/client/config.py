"""Calls about what a project hands its workloads: registry logins, secrets and
variables. Values of secrets and passwords go in and never come back out."""

from __future__ import annotations

from edgefleet.client.models import Registry, Secret, Variable
from edgefleet.client.transport import JSON, Transport


class ConfigCalls(Transport):
    # -- private registries ---------------------------------------------------------------

    def registries(self, project: str = "default") -> list[Registry]:
        """The project's registry credentials: host and username, never the password."""
        return self._all(Registry, f"/projects/{project}/registries")

    def add_registry(
        self, registry: str, username: str, password: str, *, project: str = "default"
    ) -> Registry:
        """Store (or replace) the project's login to a registry; devices pull with it.
        Forbidden without the right to manage the project's settings."""
        body = {"registry": registry, "username": username, "password": password}
        return self._send(Registry, "POST", f"/projects/{project}/registries", body)

    def remove_registry(self, registry: str, *, project: str = "default") -> None:
        """Forget the project's login to a registry (by host or id); NotFound if unknown."""
        self.delete(f"/projects/{project}/registries/{registry}")

    # -- secrets --------------------------------------------------------------------------

    def secrets(self, project: str = "default") -> list[Secret]:
        """The project's secrets: name, version, who changed each and when; never values."""
        return self._all(Secret, f"/projects/{project}/secrets")

    def create_secret(self, name: str, value: str, *, project: str = "default") -> Secret:
        """Store a new project secret (operator or owner); Conflict if the name exists."""
        body = {"name": name, "value": value}
        return self._send(Secret, "POST", f"/projects/{project}/secrets", body)

    def rotate_secret(self, name: str, value: str, *, project: str = "default") -> Secret:
        """Set a secret's new value (its version grows by one; created if new). The
        services that use it are redeployed with the new value, and only they."""
        return self._send(Secret, "PUT", f"/projects/{project}/secrets/{name}", {"value": value})

    def delete_secret(self, name: str, *, project: str = "default") -> None:
        """Delete a project secret; running services keep what they have."""
        self.delete(f"/projects/{project}/secrets/{name}")

    # -- variables ------------------------------------------------------------------------

    def variables(self, *, project: str = "default", device: str | None = None) -> list[Variable]:
        """A project's variables (with their selectors), or one device's own."""
        path = f"/devices/{device}/variables" if device else f"/projects/{project}/variables"
        return self._all(Variable, path)

    def set_variable(
        self,
        name: str,
        value: str,
        *,
        project: str = "default",
        device: str | None = None,
        selector: str | None = None,
    ) -> Variable:
        """Set a variable for a project, for its devices matching ``selector``, or for
        one ``device`` (precedence: device > selector > project > job environment).
        Invalid for a name or selector the server refuses."""
        if device:
            return self._send(
                Variable, "PUT", f"/devices/{device}/variables/{name}", {"value": value}
            )
        body: JSON = {"value": value, "selector": selector} if selector else {"value": value}
        return self._send(Variable, "PUT", f"/projects/{project}/variables/{name}", body)

    def unset_variable(
        self,
        name: str,
        *,
        project: str = "default",
        device: str | None = None,
        selector: str | None = None,
    ) -> None:
        """Delete a project, selector-scoped or device variable; NotFound if unset."""
        if device:
            self.delete(f"/devices/{device}/variables/{name}")
            return
        params = {"selector": selector} if selector else {}
        self.request("DELETE", f"/projects/{project}/variables/{name}", params=params)
