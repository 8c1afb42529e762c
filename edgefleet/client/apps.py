"""Calls about applications: their immutable versions, build contexts, and
validating a Compose file or spec before it is stored."""

from __future__ import annotations

from pathlib import Path

from edgefleet.client.models import Application, BuildContext, Validation, Version
from edgefleet.client.transport import JSON, Transport


def _source(compose: str | None, spec: JSON | None) -> JSON:
    """A version's source: the Compose text when given, else the spec."""
    return {"compose": compose} if compose is not None else {"spec": spec or {}}


class AppCalls(Transport):
    def applications(self, project: str | None = None) -> list[Application]:
        """Applications of ``project`` (else of all your projects)."""
        return self._all(Application, "/applications", project=project)

    def application(self, ref: str) -> Application:
        """One application by name or id; NotFound if you cannot see it."""
        return self._get(Application, f"/applications/{ref}")

    def create_application(
        self,
        name: str,
        version: str,
        *,
        compose: str | None = None,
        spec: JSON | None = None,
        project: str = "default",
        description: str = "",
        context: str | None = None,
    ) -> Application:
        """Create an application with its first version. ``context``: a build
        context's digest from :meth:`upload_build_context` (Compose ``build:``).
        Invalid for a Compose file or spec the server refuses (``field`` says
        where); Conflict if the name is taken."""
        body: JSON = {
            "project": project,
            "name": name,
            "version": version,
            "description": description,
        }
        body.update(_source(compose, spec))
        if context is not None:
            body["context"] = context
        return self._send(Application, "POST", "/applications", body)

    def add_version(
        self,
        app: str,
        version: str,
        *,
        compose: str | None = None,
        spec: JSON | None = None,
        context: str | None = None,
    ) -> Version:
        """Add an immutable version; ``context`` as in :meth:`create_application`.
        Conflict if the version exists; Invalid as for :meth:`create_application`."""
        body: JSON = {"version": version, **_source(compose, spec)}
        if context is not None:
            body["context"] = context
        return self._send(Version, "POST", f"/applications/{app}/versions", body)

    def upload_build_context(
        self, source: str | Path | bytes, project: str = "default"
    ) -> BuildContext:
        """Upload a build context: a directory (packed here as a tar) or a tar's
        bytes. Answers ``{"context": "sha256:…", "size", "project"}``; pass
        ``context`` to :meth:`create_application` or :meth:`add_version`.
        Invalid for a tar the server refuses (too large, unsafe paths)."""
        if isinstance(source, bytes):
            data = source
        else:
            import io
            import tarfile

            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                tar.add(str(source), arcname=".")
            data = buffer.getvalue()
        return self._send(
            BuildContext,
            "POST",
            "/build-contexts",
            params={"project": project},
            content=data,
            headers={"Content-Type": "application/x-tar"},
        )

    def versions(self, app: str) -> list[Version]:
        """Every version of an application."""
        return self._all(Version, f"/applications/{app}/versions")

    def version(self, app: str, version: str) -> Version:
        """One version of an application; NotFound if unknown."""
        return self._get(Version, f"/applications/{app}/versions/{version}")

    def validate(self, *, compose: str | None = None, spec: JSON | None = None) -> Validation:
        """Check a Compose file or spec without storing it; answers what the server
        found (:class:`~edgefleet.client.models.Validation`)."""
        return self._send(Validation, "POST", "/applications/validate", _source(compose, spec))

    def delete_application(self, app: str) -> None:
        """Delete an application and its versions; Conflict while it has active jobs."""
        self.delete(f"/applications/{app}")
