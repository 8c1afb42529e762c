"""Whether a computation may start, and with what threshold: pure, from the
request, the devices, what they reported and who is online.

Threshold: t = max(majority of the invited, the largest ``min_parties`` among
their datasets). A majority is what the protocol needs so that a lying drop
list cannot unmask anyone; ``min_parties`` is the owners' floor. Parties never
unmask with fewer than t survivors, so a released aggregate covers >= t devices.

Refusals, each a 4xx that names the devices concerned::

    dataset not declared on a device, or unreadable        422 / 409
    column absent or not numeric                           422 (field: column)
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

from edgefleet.fed.messages import Params
from edgefleet.fed.stats import params_for
from edgefleet.server.computations.schemas import ComputationIn
from edgefleet.server.computations.tables import FedDataset
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Conflict, Forbidden, Invalid, Unavailable
from edgefleet.server.projects.tables import Project

NUMERIC = ("integer", "number", "boolean")


@dataclass(frozen=True)
class Plan:
    threshold: int
    params: Params
    keys: dict[str, bytes]  # device id -> long-term X25519 public key
    names: dict[str, str]  # device id -> name
    offline: frozenset[str]


def _names(devices: Iterable[Device]) -> str:
    names = sorted(d.name for d in devices)
    shown = ", ".join(names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def check(
    body: ComputationIn,
    project: Project,
    devices: list[Device],
    datasets: Mapping[int, FedDataset],
    online: set[int],
) -> Plan:
    """The plan of a computation, or the ApiError that refuses it."""
    name = body.dataset
    if missing := [d for d in devices if d.pk not in datasets]:
        raise Invalid(f"dataset {name!r} is not declared on {_names(missing)}", field="dataset")
    if broken := [d for d in devices if datasets[d.pk].error]:
        first = datasets[broken[0].pk].error
        raise Conflict(f"dataset {name!r} cannot be read on {_names(broken)}: {first}")
    for device in devices:
        columns = {c["name"]: c["type"] for c in datasets[device.pk].columns}
        if body.column not in columns:
            raise Invalid(
                f"dataset {name!r} on {device.name} has no column {body.column!r}", field="column"
            )
        if columns[body.column] not in NUMERIC:
            raise Invalid(
                f"column {body.column!r} of {name!r} on {device.name} is "
                f"{columns[body.column]}, not numeric",
                field="column",
            )
    refs = {project.name, project.id}
    if denied := [d for d in devices if not _project_allowed(datasets[d.pk], refs)]:
        raise Forbidden(
            f"the owners of {name!r} on {_names(denied)} do not allow project {project.name!r}"
        )
    if denied := [
        d for d in devices if datasets[d.pk].allow_ops and body.op not in datasets[d.pk].allow_ops
    ]:
        raise Forbidden(f"the owners of {name!r} on {_names(denied)} do not allow {body.op}")
    floor = max(datasets[d.pk].min_parties for d in devices)
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
    try:
        params = params_for(body.op, body.bins)
    except ValueError as exc:
        raise Invalid(str(exc), field="bins") from exc
    if len(devices) > params.max_parties():
        raise Invalid(f"at most {params.max_parties()} devices per computation", field="devices")
    return Plan(threshold, params, keys, {d.id: d.name for d in devices}, offline)


def _project_allowed(dataset: FedDataset, refs: set[str]) -> bool:
    """No list: the device's own project (the only one that can ask). A list: only those."""
    return not dataset.allow_projects or bool(refs & set(dataset.allow_projects))
