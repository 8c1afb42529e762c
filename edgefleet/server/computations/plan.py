"""Whether a computation may start, and with what threshold: pure, from the
request, the devices, what they reported and who is online.

Threshold: t = max(majority of the invited, the largest ``min_parties`` among
their datasets). A majority is what the protocol needs so that a lying drop
list cannot unmask anyone; ``min_parties`` is the owners' floor. Parties never
unmask with fewer than t survivors, so a released aggregate covers >= t devices.

Refusals, each a 4xx that names the devices concerned::

    dataset not declared on a device, or unreadable        422 / 409
    column absent or not numeric                           422 (field: column, columns,
                                                           where, group_by)
    differential privacy required or its budget spent      403
    project not allowed by a device's policy               403
    operation not allowed by a device's policy             403
    fewer devices than a dataset's min_parties             422 (field: devices)
    a device without a long-term key                       409
    fewer devices online than the threshold                503
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgefleet.fed.analytics import layout
from edgefleet.fed.messages import Params, Task
from edgefleet.fed.stats import task_params
from edgefleet.server.computations.schemas import ComputationIn
from edgefleet.server.computations.tables import FedDataset
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Conflict, Forbidden, Invalid, Unavailable
from edgefleet.server.projects.tables import Project
from edgefleet.wire.messages import DatasetPrivacy

NUMERIC = ("integer", "number", "boolean")


@dataclass(frozen=True)
class Plan:
    threshold: int
    params: Params
    keys: dict[str, bytes]  # device id -> long-term X25519 public key
    names: dict[str, str]  # device id -> name
    offline: frozenset[str]
    task: Task  # what every device computes, bound into the invitation


def _names(devices: Iterable[Device]) -> str:
    names = sorted(d.name for d in devices)
    shown = ", ".join(names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def task_of(body: ComputationIn, project: Project, actor: str, min_parties: int) -> Task:
    """The task, or a 422 naming the field that makes it impossible."""
    try:
        return body.task(project.name, project.id, actor, min_parties)
    except ValueError as exc:
        field, sep, why = str(exc).partition(": ")
        known = field in ComputationIn.model_fields
        raise Invalid(why if sep and known else str(exc), field=field if known else None) from exc


def _columns(body: ComputationIn, task: Task, device: Device, dataset: FedDataset) -> None:
    """Every column the task reads exists there; the ones it adds up are numeric."""
    columns = {c["name"]: c["type"] for c in dataset.columns}
    shape = layout.check(task)
    used = [(c, "where") for c in (w.column for w in task.where)]
    used += [(task.group_by, "group_by")] if task.group_by else []
    used += [(v, "column" if v == body.column else "columns") for v in shape.variables]
    for column, field in used:
        if column not in columns:
            raise Invalid(
                f"dataset {body.dataset!r} on {device.name} has no column {column!r}", field=field
            )
        if field in ("column", "columns") and columns[column] not in NUMERIC:
            raise Invalid(
                f"column {column!r} of {body.dataset!r} on {device.name} is "
                f"{columns[column]}, not numeric",
                field=field,
            )


def _privacy(
    body: ComputationIn, devices: list[Device], datasets: Mapping[int, FedDataset]
) -> None:
    """Refuse early what devices reported they would refuse: DP required, budget spent."""
    for device in devices:
        privacy = DatasetPrivacy.model_validate(datasets[device.pk].privacy or {})
        if privacy.dp_epsilon is None:
            continue
        if body.epsilon is None:
            raise Forbidden(
                f"the owner of {body.dataset!r} on {device.name} allows only differentially "
                f"private results: give epsilon (and bounds)"
            )
        left = privacy.dp_epsilon - privacy.epsilon_spent
        if body.epsilon > left + 1e-9:
            raise Forbidden(
                f"the privacy budget of {body.dataset!r} on {device.name} is spent "
                f"(epsilon left {max(left, 0.0):g}, asked {body.epsilon:g})"
            )


def check(
    body: ComputationIn,
    project: Project,
    devices: list[Device],
    datasets: Mapping[int, FedDataset],
    online: set[int],
    actor: str = "",
) -> Plan:
    """The plan of a computation, or the ApiError that refuses it."""
    name = body.dataset
    if missing := [d for d in devices if d.pk not in datasets]:
        raise Invalid(f"dataset {name!r} is not declared on {_names(missing)}", field="dataset")
    if broken := [d for d in devices if datasets[d.pk].error]:
        first = datasets[broken[0].pk].error
        raise Conflict(f"dataset {name!r} cannot be read on {_names(broken)}: {first}")
    floor = max(datasets[d.pk].min_parties for d in devices)
    task = task_of(body, project, actor, floor)
    for device in devices:
        _columns(body, task, device, datasets[device.pk])
    refs = {project.name, project.id}
    if denied := [d for d in devices if not _project_allowed(datasets[d.pk], refs)]:
        raise Forbidden(
            f"the owners of {name!r} on {_names(denied)} do not allow project {project.name!r}"
        )
    if denied := [
        d for d in devices if datasets[d.pk].allow_ops and body.op not in datasets[d.pk].allow_ops
    ]:
        raise Forbidden(f"the owners of {name!r} on {_names(denied)} do not allow {body.op}")
    _privacy(body, devices, datasets)
    if len(devices) < floor:
        raise Invalid(
            f"dataset {name!r} needs at least {floor} devices in a computation; "
            f"{len(devices)} asked: refused, nothing was computed",
            field="devices",
        )
    threshold = max(len(devices) // 2 + 1, floor, 2)
    keys: dict[str, bytes] = {}
    for device in devices:
        try:
            key = base64.b64decode(device.public_key or "", validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise Conflict(f"device {device.name} has no federated key yet (agent too old?)")
        keys[device.id] = key
    offline = frozenset(d.id for d in devices if d.pk not in online)
    if len(devices) - len(offline) < threshold:
        raise Unavailable(
            f"only {len(devices) - len(offline)} of {len(devices)} devices are online; "
            f"the computation needs {threshold}"
        )
    params = task_params(task, parties=len(devices))  # the smallest ring that fits
    if len(devices) > params.max_parties():
        raise Invalid(f"at most {params.max_parties()} devices per computation", field="devices")
    return Plan(threshold, params, keys, {d.id: d.name for d in devices}, offline, task)


def _project_allowed(dataset: FedDataset, refs: set[str]) -> bool:
    """No list: the device's own project (the only one that can ask). A list: only those."""
    return not dataset.allow_projects or bool(refs & set(dataset.allow_projects))
