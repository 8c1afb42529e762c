"""What a guest job may do on a lent device. Pure: policies in, policy out.

A loan's rights never widen the device's policy: booleans are AND-ed, lists
intersected, limits take the smaller. Memory and process caps are admission
rules on the server (the agent enforces its own owner's policy, not the
loan's), so a guest service must *declare* ``mem_limit``/``pids_limit``
within the cap; one that declares none is refused rather than left to run
unbounded.
"""

from __future__ import annotations

from edgefleet.server.loans.schemas import LoanRights
from edgefleet.spec.model import AppSpec
from edgefleet.spec.policy import DevicePolicy, app_refusals


def _least(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def narrow(device: DevicePolicy | None, grant: LoanRights) -> DevicePolicy:
    """The device's policy as a guest sees it (``None``, an agent too old to
    report one, counts as allowing nothing beyond defaults)."""
    base = device or DevicePolicy()

    def both(mine: list[str], theirs: list[str]) -> list[str]:
        return [item for item in theirs if item in mine]

    return DevicePolicy(
        process=base.process and grant.process,
        process_user=base.process_user,
        host_paths=both(base.host_paths, grant.host_paths),
        published_ports=base.published_ports and grant.published_ports,
        privileged=base.privileged and grant.privileged,
        capabilities=both(base.capabilities, grant.capabilities),
        security_profiles=[],
        external_volumes=both(base.external_volumes, grant.external_volumes),
        peripherals=both(base.peripherals, grant.peripherals),
        peripheral_kinds=both(base.peripheral_kinds, grant.peripheral_kinds),
        default_memory=base.default_memory,
        max_memory=_least(base.max_memory, grant.max_memory),
        default_pids=base.default_pids,
        max_pids=_least(base.max_pids, grant.max_pids),
    )


def guest_refusal(spec: AppSpec, device: DevicePolicy | None, grant: LoanRights) -> str | None:
    """``None`` if a guest may run ``spec`` under this loan, else why not."""
    found: list[str] = []
    for name, service in sorted(spec.services.items()):
        if grant.max_memory is not None:
            if service.mem_limit is None:
                found.append(f"service {name}: set mem_limit (this loan caps memory)")
            elif service.mem_limit > grant.max_memory:
                found.append(
                    f"service {name}: mem_limit {service.mem_limit} is more than the "
                    f"loan's cap ({grant.max_memory} bytes)"
                )
        if grant.max_pids is not None:
            if not service.pids_limit:
                found.append(f"service {name}: set pids_limit (this loan caps processes)")
            elif service.pids_limit > grant.max_pids:
                found.append(
                    f"service {name}: pids_limit {service.pids_limit} is more than the "
                    f"loan's cap ({grant.max_pids})"
                )
    found += app_refusals(spec, narrow(device, grant))
    if not found:
        return None
    return "the loan does not allow it: " + "; ".join(found)
