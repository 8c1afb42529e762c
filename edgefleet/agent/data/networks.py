"""Where containers reach the agent: the gateway address of each job network.

Containers of a job sit on the job's own bridge network; the host's address
on that bridge (the gateway) is how they reach the agent, and it exists only
while a container runs on the bridge. Only the Docker Engine API runtime has
networks; its engine client is reached through the
:class:`~edgefleet.agent.runtimes.capabilities.HasEngine` capability, and the
client's errors are imported only once an engine is there (a process-only
device never loads the client).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefleet.agent.runtimes.base import LABEL_DEVICE, LABEL_MANAGED, Runtime
from edgefleet.agent.runtimes.capabilities import HasEngine

if TYPE_CHECKING:
    from edgefleet.agent.engine import EngineClient

log = logging.getLogger(__name__)

# Podman puts this name in every container's /etc/hosts; used only if the
# network's gateway cannot be read when a workload is created.
FALLBACK_HOST = "host.containers.internal"


@dataclass(frozen=True)
class JobNetwork:
    name: str
    gateway: str
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network


def _api(runtime: Runtime | None) -> EngineClient | None:
    return runtime.engine_api() if isinstance(runtime, HasEngine) else None


def _engine_errors() -> tuple[type[Exception], ...]:
    """What asking the engine can raise: the client's errors, and the socket's."""
    from edgefleet.agent.engine import EngineError

    return (EngineError, OSError)


def _parse(info: dict[str, Any]) -> JobNetwork | None:
    for config in (info.get("IPAM") or {}).get("Config") or []:
        gateway, subnet = config.get("Gateway"), config.get("Subnet")
        if gateway and subnet:
            try:
                net = ipaddress.ip_network(subnet, strict=False)
            except ValueError:
                continue
            if net.version == 4:
                return JobNetwork(str(info.get("Name", "")), str(gateway), net)
    return None


async def job_networks(runtime: Runtime | None, device_id: str) -> list[JobNetwork]:
    """This device's job networks and their gateways (empty without an engine)."""
    api = _api(runtime)
    if api is None:
        return []
    labels = [f"{LABEL_MANAGED}=true", f"{LABEL_DEVICE}={device_id}"]
    try:
        found = await asyncio.to_thread(api.networks.list, filters={"label": labels})
    except _engine_errors() as exc:
        log.debug("cannot list networks: %s", exc)
        return []
    result = []
    for info in found:
        net = _parse(info)
        if net is None and info.get("Name"):
            # Some engines leave IPAM out of the list; ask for the one network.
            try:
                net = _parse(await asyncio.to_thread(api.networks.inspect, info["Name"]))
            except _engine_errors() as exc:
                log.debug("cannot inspect network %s: %s", info["Name"], exc)
                net = None
        if net is not None:
            result.append(net)
    return result


def gateway_now(runtime: Runtime | None, network: str) -> str | None:
    """The gateway of one network, asked right away (blocking: call it in a
    thread); once per workload created, after the network was made."""
    api = _api(runtime)
    if api is None:
        return None
    try:
        net = _parse(api.networks.inspect(network))
    except _engine_errors() as exc:
        log.debug("cannot inspect network %s: %s", network, exc)
        return None
    return net.gateway if net is not None else None
