"""The owner's rules, checked by the device against every invitation before it
reads a single value. Pure: the invitation and the declaration in, a reason out.

The server checks the same rules from what devices reported, to refuse early
with a clear error; this check is the one that counts, because the device is
the custodian and the server may be stale or wrong.

- the invitation carries a task, and the task names a dataset declared here;
- the project asking is allowed: one named in ``allow_projects`` (name or id),
  or, when the owner named none, the device's own project;
- the operation is allowed (``allow_ops``; empty: all of them);
- the aggregate covers at least ``min_parties`` devices: at least that many are
  invited *and* the threshold t is at least that (a party never unmasks with
  fewer than t survivors, so the released sum covers >= t devices);
- grouped results suppress groups below the dataset's ``min_parties``;
- the task is possible (:func:`edgefleet.fed.analytics.layout.check`) and the
  encoding fits it (vector length).

The rules against the analyst that need memory (query budget, differencing,
differential-privacy budget) are in :mod:`.guard`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefleet.agent.datasets.registry import DatasetSpec

if TYPE_CHECKING:
    from edgefleet.fed.messages import Invitation


def refusal(
    spec: DatasetSpec | None, invitation: Invitation, device_id: str, own_project: str
) -> str | None:
    """Why this device declines the invitation, or None if it takes part."""
    task = invitation.task
    if task is None:
        return "the invitation names no task"
    if device_id not in invitation.parties:
        return "this device is not among the invited parties"
    if spec is None:
        return f"no dataset named {task.dataset!r} is declared on this device"
    allowed = spec.allow_projects or [own_project]
    if task.project not in allowed and task.project_id not in allowed:
        return f"dataset {spec.name!r} does not allow project {task.project!r}"
    if spec.allow_ops and task.op not in spec.allow_ops:
        return f"dataset {spec.name!r} does not allow {task.op}"
    parties, t = len(invitation.parties), invitation.threshold
    if parties < spec.min_parties:
        return (
            f"dataset {spec.name!r} needs at least {spec.min_parties} parties; "
            f"{parties} are invited"
        )
    if t < spec.min_parties:
        return (
            f"dataset {spec.name!r} needs at least {spec.min_parties} parties in the result; "
            f"the threshold is {t}"
        )
    if task.group_by is not None and task.min_group_parties < spec.min_parties:
        return (
            f"dataset {spec.name!r} needs groups of at least {spec.min_parties} parties; "
            f"the task suppresses only below {task.min_group_parties}"
        )
    from edgefleet.fed.stats import task_params  # loaded with the first invitation

    try:
        expected = task_params(task).length
    except ValueError as exc:
        return f"invalid task: {exc}"
    if invitation.params.length != expected:
        return f"the encoding has {invitation.params.length} elements; {task.op} needs {expected}"
    return None
