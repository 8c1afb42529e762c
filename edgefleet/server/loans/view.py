"""What a guest project sees of a lent device: enough to book it and run
on it, nothing of its owner's. Kept: id, name, the labels the owner exposes,
peripherals, runtimes, online/ready (with the reason), and the policy as the
loan narrows it. Dropped: the owning project, metadata, hidden labels,
resources, agent version, generations, the replica."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.devices.schemas import DeviceOut
from edgefleet.server.loans.rights import narrow
from edgefleet.server.loans.schemas import LoanRights
from edgefleet.server.loans.tables import DeviceLoan
from edgefleet.wire.messages import Resources
from edgefleet.wire.workload import DeviceContext


def exposed(labels: dict[str, str], keys: list[str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k in keys}


def guest_view(device: DeviceOut, loans: list[DeviceLoan]) -> DeviceOut:
    """``loans``: the device's loans to the viewer's projects (the first is shown)."""
    keys = sorted({k for loan in loans for k in loan.expose_labels})
    first = loans[0] if loans else None
    return DeviceOut(
        id=device.id,
        name=device.name,
        project="",
        project_id="",
        labels=exposed(device.labels, keys),
        metadata={},
        peripherals=device.peripherals,
        resources=Resources(),
        runtimes=device.runtimes,
        policy=narrow(device.policy, LoanRights.model_validate(first.rights)) if first else None,
        agent_version="",
        is_online=device.is_online,
        is_ready=device.is_ready,
        not_ready_reason=device.not_ready_reason,
        lent=True,
        loan=first.id if first else None,
        last_seen=device.last_seen,
        created_at=device.created_at,
    )


async def guest_context(
    db: AsyncSession, device_pk: int, project_pk: int, context: DeviceContext
) -> DeviceContext:
    """The device as a guest job's workload reads it (``EDGEFLEET_CONTEXT_URL``):
    its name and exposed labels, never the owner's metadata."""
    from edgefleet.server.loans.service import loan_for

    loan = await loan_for(db, device_pk, project_pk)
    keys = list(loan.expose_labels) if loan is not None else []
    return DeviceContext(name=context.name, labels=exposed(context.labels, keys), metadata={})
