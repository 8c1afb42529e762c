"""The previous configuration a staged rollout keeps for the devices it holds back.

A version change keeps the previous *version* (``from_version``) for devices
not yet moved. A configuration change (a rotated secret, a variable set or
unset at any scope) changes no version, so the rollout keeps the previous
*inputs* instead: for each secret or variable the change touched, the value it
had before (``None``: it did not exist). A held-back device is rendered with
these laid over the current ones (:mod:`edgefleet.server.variables.render`),
so its resolved spec, hence its revision, stays as it was.

A previous secret version stays here sealed with the server's key, exactly as
it was stored, for as long as some device may still need it: while the
rollout is rolling or paused, and after a revert or abort (the job then stays
on these inputs until the next change of its configuration or version
completes a rollout). A rollout that finishes ``done`` forgets them.

When a second change arrives while inputs are held, the older previous value
of a name wins: it is what the held-back devices actually have.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field

from edgefleet.server.secrets.tables import ProjectSecret
from edgefleet.server.variables.precedence import ScopedValue


class PreviousSecret(BaseModel):
    version: int
    sealed: str = Field(description="sealed with the server's key, as stored; never shown")


class PreviousVariable(BaseModel):
    name: str
    selector: str = ""
    value: str | None = Field(None, description="None: the variable did not exist")


class HeldInputs(BaseModel):
    """What held-back devices see instead of the current secrets and variables."""

    secrets: dict[str, PreviousSecret | None] = Field(default_factory=dict)
    project_variables: list[PreviousVariable] = Field(default_factory=list)
    device_variables: dict[str, list[PreviousVariable]] = Field(default_factory=dict)
    changes: list[str] = Field(default_factory=list, description="what changed, for people")

    def empty(self) -> bool:
        return not (self.secrets or self.project_variables or self.device_variables)

    def merged(self, newer: HeldInputs) -> HeldInputs:
        """These held inputs plus ``newer``'s, the older previous value winning."""
        secrets = {**newer.secrets, **self.secrets}
        known = {(v.name, v.selector) for v in self.project_variables}
        project = self.project_variables + [
            v for v in newer.project_variables if (v.name, v.selector) not in known
        ]
        devices = {k: list(v) for k, v in self.device_variables.items()}
        for device, values in newer.device_variables.items():
            mine = devices.setdefault(device, [])
            names = {v.name for v in mine}
            mine.extend(v for v in values if v.name not in names)
        changes = self.changes + [c for c in newer.changes if c not in self.changes]
        return HeldInputs(
            secrets=secrets,
            project_variables=project,
            device_variables=devices,
            changes=changes,
        )

    # -- laying them over the current values (pure) ------------------------------------

    def project_scope(self, current: Iterable[ScopedValue]) -> list[ScopedValue]:
        held = {(v.name, v.selector): v.value for v in self.project_variables}
        kept = [v for v in current if (v.name, v.selector) not in held]
        return kept + [
            ScopedValue(n, value, s) for (n, s), value in held.items() if value is not None
        ]

    def device_scope(self, device_id: str, current: dict[str, str]) -> dict[str, str]:
        out = dict(current)
        for held in self.device_variables.get(device_id, []):
            if held.value is None:
                out.pop(held.name, None)
            else:
                out[held.name] = held.value
        return out

    def secret_rows(
        self, project_pk: int, current: dict[tuple[int, str], ProjectSecret]
    ) -> dict[tuple[int, str], ProjectSecret]:
        """``current`` with held secrets replaced by (unsaved) rows of their
        previous version, or left out when they did not exist."""
        out = dict(current)
        for name, previous in self.secrets.items():
            if previous is None:
                out.pop((project_pk, name), None)
            else:
                out[(project_pk, name)] = ProjectSecret(
                    project_pk=project_pk,
                    name=name,
                    version=previous.version,
                    sealed=previous.sealed,
                )
        return out


def secret(name: str, row: ProjectSecret | None, what: str) -> HeldInputs:
    """The previous value of secret ``name`` (``row`` as it is before the change)."""
    previous = None if row is None else PreviousSecret(version=row.version, sealed=row.sealed)
    return HeldInputs(secrets={name: previous}, changes=[what])


def project_variable(name: str, selector: str, value: str | None, what: str) -> HeldInputs:
    return HeldInputs(
        project_variables=[PreviousVariable(name=name, selector=selector, value=value)],
        changes=[what],
    )


def device_variable(device_id: str, name: str, value: str | None, what: str) -> HeldInputs:
    return HeldInputs(
        device_variables={device_id: [PreviousVariable(name=name, value=value)]},
        changes=[what],
    )
