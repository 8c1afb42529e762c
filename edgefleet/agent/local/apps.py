"""The owner's local apps: their own Compose workloads beside the fleet's.

    agent apps run -f compose.yaml NAME --POST /apps--> LocalApps.run
        parse (deploy-time, no variables) -> device policy (like a fleet job)
        -> JobAssignment(job_id "local-NAME") -> local-apps.json -> change queue

They run through the same change queue, runtimes, isolation and policy as a
fleet job, under a job id namespace the server never uses (``local-``).
:meth:`Jobs.assignments` merges them in *over* the server's desired state,
so a desired state that omits them (every one does) leaves them running, and
one that names the same id cannot replace them. Secrets and configs need the
server (they are sealed to the device by it): a local app may use neither.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from edgefleet.agent.http_server import HttpError
from edgefleet.agent.runtimes.base import RuntimeSet
from edgefleet.agent.state import StateDir
from edgefleet.wire.local import local_app_job
from edgefleet.wire.workload import JobAssignment

FILE = "local-apps.json"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
LOCAL_PROJECT = "local"


class _Book(BaseModel):
    apps: dict[str, JobAssignment] = Field(default_factory=dict)  # name -> assignment


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise HttpError(
            422,
            f"name: {name[:40]!r} is not a local app name: use 1-31 lowercase letters, "
            "digits or '-', starting with a letter or digit",
        )
    return name


class LocalApps:
    def __init__(self, state: StateDir, limit: int) -> None:
        self.state = state
        self.limit = limit
        self._book = _Book.model_validate(state.load_json(FILE, {}))

    def assignments(self) -> dict[str, JobAssignment]:
        return {a.job_id: a for a in self._book.apps.values()}

    def names(self) -> dict[str, str]:
        """name -> job id."""
        return {name: a.job_id for name, a in self._book.apps.items()}

    def run(self, name: str, compose: str, version: str, runtimes: RuntimeSet) -> JobAssignment:
        """Validate and store (replacing an app of that name); refusals are 422s."""
        check_name(name)
        if name not in self._book.apps and len(self._book.apps) >= self.limit:
            raise HttpError(409, f"name: this device already runs {self.limit} local apps")
        # The Compose parser (and YAML) load with the first app, not with every
        # idle agent: 1.7 MB the daemon would otherwise keep (issue 18).
        from edgefleet.spec.compose import SpecInvalid, parse

        try:
            spec, _ = parse(compose, environment={})
        except SpecInvalid as exc:
            raise HttpError(422, f"compose: {exc}") from exc
        for service_name, service in spec.services.items():
            if service.secrets or service.configs:
                raise HttpError(
                    422,
                    f"compose: service {service_name}: a local app cannot use secrets or "
                    "configs (they come from the server); mount a host path the device allows",
                )
        refused = runtimes.refusals(spec)
        if refused:
            raise HttpError(422, "compose: cannot run here: " + "; ".join(refused))
        assignment = JobAssignment(
            job_id=local_app_job(name),
            project_id=LOCAL_PROJECT,
            application=name,
            version=version,
            spec=spec,
        )
        self._book.apps[name] = assignment
        self._save()
        return assignment

    def remove(self, name: str) -> str:
        """The removed app's job id; 404 when there is no such app."""
        check_name(name)
        found = self._book.apps.pop(name, None)
        if found is None:
            raise HttpError(404, f"name: no local app {name!r} on this device")
        self._save()
        return found.job_id

    def _save(self) -> None:
        self.state.save_json(FILE, self._book.model_dump(mode="json"))
