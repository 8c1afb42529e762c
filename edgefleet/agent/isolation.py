"""Jobs on one device never reach each other: the agent's own firewall table.

Each job network is a bridge of its own; the engine is meant to keep bridges
apart (Docker always does, Podman's netavark with ``isolate=true``), but
netavark 1.4 (Podman 4.3, Debian 12) loses those rules whenever any isolated
network is torn down. So the agent keeps its own nftables table per device,
``table inet edgefleet_<device>``, and reconciles it from what the engine
reports, never patching it:

    engine networks (labels) --> desired(...)   pure: the whole table, or None
                                     |
    nft list table  ----------- same as what we last wrote? --> nothing to do
                                     | no
                                     v
    nft -f: create-if-missing, delete, recreate    (one atomic transaction)

A table of its own, with its own ``forward`` base chain, rather than a chain
jumped to from ``FORWARD``: nothing else (netavark, Docker, iptables -F,
firewalld) ever rewrites it, no rule outside it is touched, and its position
does not matter, because in nftables a ``drop`` in any base chain is final,
whatever the other tables accept. One table per device id, so two agents
sharing one engine (tests) each own theirs and never fight.

The rules drop forwarded packets between two different edgefleet networks,
in both directions, by bridge interface where the engine names it and always
by subnet. Traffic within a network, to and from the host (the data endpoint
on the gateway, the agent's proxy) and to the outside world is not forwarded
between two job networks, so it is untouched.

Runs only as root with ``nft`` installed and ``--isolation-firewall`` on;
otherwise it says once that isolation is left to the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edgefleet.agent.part import AgentContext
from edgefleet.agent.runtimes.base import LABEL_DEVICE, LABEL_MANAGED
from edgefleet.agent.runtimes.capabilities import HasEngine, HasNetworkHooks
from edgefleet.tasks import cancel_all

log = logging.getLogger(__name__)

Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network
TABLE_PREFIX = "edgefleet_"
PRIORITY = -10  # before iptables' filter chains (0): drops are final either way
RECONCILE_EVERY = 3.0
_IFNAME = re.compile(r"^[A-Za-z0-9_.@:+-]{1,15}$")  # bridge names we can quote safely


@dataclass(frozen=True)
class JobNet:
    """One edgefleet network as the engine reports it."""

    name: str
    device: str
    bridge: str | None  # None when the engine does not say
    subnets: tuple[Subnet, ...]


@dataclass(frozen=True)
class Ruleset:
    """The whole table: its sets (every edgefleet network on the engine, any
    device) and its rules (this device's networks, both directions)."""

    table: str
    bridges: tuple[str, ...]
    nets4: tuple[str, ...]
    nets6: tuple[str, ...]
    rules: tuple[str, ...]

    def body(self) -> str:
        lines = [f"table inet {self.table} {{"]
        for name, kind, flags, elements in (
            ("bridges", "ifname", "", tuple(f'"{b}"' for b in self.bridges)),
            ("nets4", "ipv4_addr", "flags interval; ", self.nets4),
            ("nets6", "ipv6_addr", "flags interval; ", self.nets6),
        ):
            items = f"elements = {{ {', '.join(elements)} }}; " if elements else ""
            lines.append(f"  set {name} {{ type {kind}; {flags}{items}}}")
        lines.append("  chain forward {")
        lines.append(f"    type filter hook forward priority {PRIORITY}; policy accept;")
        lines += [f"    {rule}" for rule in self.rules]
        lines += ["  }", "}"]
        return "\n".join(lines) + "\n"


def table_name(device_id: str) -> str:
    return TABLE_PREFIX + (re.sub(r"[^A-Za-z0-9_]", "_", device_id) or "any")


def _comment(name: str) -> str:
    return "edgefleet " + re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100]


def desired(device_id: str, networks: Iterable[JobNet]) -> Ruleset | None:
    """The table this device's agent wants, or None when it has no network (no
    table at all). Pure: the engine's answer in, the rules out.

    Every rule drops a packet that crosses from one edgefleet network into a
    different one. Also between two networks of the same job: as in Compose,
    a network is a boundary, and a service on both reaches each directly."""
    nets = sorted(set(networks), key=lambda n: n.name)
    own = [n for n in nets if not device_id or n.device == device_id]
    if not own:
        return None
    bridges = sorted({n.bridge for n in nets if n.bridge and _IFNAME.match(n.bridge)})
    every = [s for n in nets for s in n.subnets]
    nets4 = ipaddress.collapse_addresses(s for s in every if isinstance(s, ipaddress.IPv4Network))
    nets6 = ipaddress.collapse_addresses(s for s in every if isinstance(s, ipaddress.IPv6Network))
    rules: list[str] = []
    for net in own:
        note = f'comment "{_comment(net.name)}"'
        if net.bridge and _IFNAME.match(net.bridge):
            b = f'"{net.bridge}"'
            rules.append(f"iifname {b} oifname != {b} oifname @bridges drop {note}")
            rules.append(f"oifname {b} iifname != {b} iifname @bridges drop {note}")
        for subnet in sorted(set(net.subnets), key=lambda s: (s.version, s)):
            ip, where = ("ip", "@nets4") if subnet.version == 4 else ("ip6", "@nets6")
            rules.append(
                f"{ip} saddr {subnet} {ip} daddr != {subnet} {ip} daddr {where} drop {note}"
            )
            rules.append(
                f"{ip} daddr {subnet} {ip} saddr != {subnet} {ip} saddr {where} drop {note}"
            )
    return Ruleset(
        table=table_name(device_id),
        bridges=tuple(bridges),
        nets4=tuple(str(s) for s in nets4),
        nets6=tuple(str(s) for s in nets6),
        rules=tuple(rules),
    )


def replace_script(table: str, ruleset: Ruleset | None) -> str:
    """One ``nft -f`` transaction: the old table goes and the new one comes (or
    none), atomically; declaring it first makes the delete safe when absent."""
    script = f"table inet {table} {{}}\ndelete table inet {table}\n"
    return script + (ruleset.body() if ruleset is not None else "")


# -- the engine's networks ---------------------------------------------------------------


def _subnets(values: Iterable[Any]) -> tuple[Subnet, ...]:
    found: list[Subnet] = []
    for value in values:
        with contextlib.suppress(ValueError, TypeError):
            found.append(ipaddress.ip_network(str(value), strict=False))
    return tuple(found)


def parse_libpod(item: dict[str, Any]) -> JobNet:
    """Podman's own API (``/libpod/networks/json``) names the bridge."""
    labels = item.get("labels") or {}
    return JobNet(
        name=str(item.get("name", "")),
        device=str(labels.get(LABEL_DEVICE, "")),
        bridge=item.get("network_interface") or None,
        subnets=_subnets(s.get("subnet") for s in item.get("subnets") or []),
    )


def parse_compat(item: dict[str, Any], podman: bool) -> JobNet:
    """The Docker API: Docker names a bridge ``br-<id>`` unless told otherwise;
    Podman's compatible API does not say (subnets only)."""
    labels = item.get("Labels") or {}
    bridge = (item.get("Options") or {}).get("com.docker.network.bridge.name")
    if not bridge and not podman and item.get("Driver") == "bridge" and item.get("Id"):
        bridge = "br-" + str(item["Id"])[:12]
    return JobNet(
        name=str(item.get("Name", "")),
        device=str(labels.get(LABEL_DEVICE, "")),
        bridge=bridge or None,
        subnets=_subnets(c.get("Subnet") for c in (item.get("IPAM") or {}).get("Config") or []),
    )


async def engine_networks(runtime: HasEngine) -> list[JobNet]:
    """Every edgefleet network on the engine, of any device. Raises when the
    engine cannot be asked: the caller then keeps the rules it has."""
    from edgefleet.agent.engine import EngineError, NotFound  # loaded: the runtime has an engine

    api = runtime.engine_api()
    label = f"{LABEL_MANAGED}=true"
    podman = bool(await runtime.is_podman())
    if podman:
        params = {"filters": {"label": [label]}}
        try:
            answer = await asyncio.to_thread(
                api.json, "GET", "/v4.0.0/libpod/networks/json", params=params, versioned=False
            )
            return [parse_libpod(i) for i in answer or [] if i.get("driver") == "bridge"]
        # an older Podman (404 on its own API), or an answer of another shape:
        # the compatible API below
        except (EngineError, OSError, AttributeError) as exc:
            log.debug("Podman's own network list failed (%s); using subnets only", exc)
    found = await asyncio.to_thread(api.networks.list, filters={"label": [label]})
    result = []
    for item in found:
        if not (item.get("IPAM") or {}).get("Config") and item.get("Name"):
            with contextlib.suppress(NotFound):  # gone since the list: next round
                item = await asyncio.to_thread(api.networks.inspect, item["Name"])
        result.append(parse_compat(item, podman))
    return result


# -- the executor --------------------------------------------------------------------------


async def nft(binary: str, *args: str, script: str | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        binary,
        *args,
        stdin=asyncio.subprocess.PIPE if script is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(script.encode() if script is not None else None)
    return process.returncode or 0, (out or err).decode(errors="replace")


def unavailable(binary: str = "nft") -> str | None:
    """Why the agent cannot keep a firewall here, or None."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "the agent does not run as root"
    if shutil.which(binary) is None:
        return f"{binary} is not installed"
    return None


ABSENT = "-"  # what we last left: no table


class IsolationFirewall:
    """The agent part that keeps ``table inet edgefleet_<device>`` right."""

    def __init__(self, runtime: HasEngine, device_id: str, *, binary: str = "nft") -> None:
        self.runtime = runtime
        self.device_id = device_id
        self.table = table_name(device_id)
        self.binary = shutil.which(binary) or binary
        self.every = RECONCILE_EVERY
        self._lock = asyncio.Lock()
        self._written: tuple[str, str] | None = None  # (script, listing right after)
        self._task: asyncio.Task[None] | None = None
        self._failing: str | None = None

    async def start(self) -> None:
        await self.reconcile_quietly()
        self._task = asyncio.create_task(self._loop(), name="isolation-firewall")

    async def stop(self) -> None:
        """The table stays: the containers keep running while the agent is away."""
        if self._task is not None:
            await cancel_all([self._task])

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.reconcile_quietly()

    async def reconcile_quietly(self) -> None:
        """For hooks and the loop: a failure of the engine (the engine client's
        errors, OSError) or of nft (RuntimeError, OSError) is logged once, never raised."""
        from edgefleet.agent.engine import EngineError  # loaded: the runtime has an engine

        try:
            await self.reconcile()
        except (EngineError, OSError, RuntimeError) as exc:
            message = str(exc) or type(exc).__name__
            if message != self._failing:
                log.warning("isolation firewall not updated (the rules in place stay): %s", message)
            self._failing = message
        else:
            if self._failing is not None:
                log.info("jobs' networks are kept apart by the firewall again")
            self._failing = None

    async def reconcile(self) -> bool:
        """Make the table what the engine's networks call for; True if it was
        (re)written. Raises when the engine or nft cannot be used."""
        async with self._lock:
            ruleset = desired(self.device_id, await engine_networks(self.runtime))
            script = replace_script(self.table, ruleset)
            if ruleset is None:
                if self._written is not None and self._written[1] == ABSENT:
                    return False
                await self._apply(script)
                self._written = (script, ABSENT)
                return True
            code, listing = await nft(self.binary, "list", "table", "inet", self.table)
            listing = listing if code == 0 else ABSENT
            if self._written == (script, listing):
                return False
            previous = self._written
            if previous is not None and previous[0] == script:
                log.warning(
                    "the firewall rules keeping jobs apart were changed or removed "
                    "outside the agent (table inet %s): restored",
                    self.table,
                )
            elif previous is None or previous[1] == ABSENT:
                log.info(
                    "jobs' networks are kept apart by the agent (nft table inet %s)", self.table
                )
            await self._apply(script)
            code, listing = await nft(self.binary, "list", "table", "inet", self.table)
            self._written = (script, listing if code == 0 else ABSENT)
            log.debug(
                "isolation firewall: %d rules in table inet %s", len(ruleset.rules), self.table
            )
            return True

    async def _apply(self, script: str) -> None:
        code, output = await nft(self.binary, "-f", "-", script=script)
        if code != 0:
            raise RuntimeError(f"nft refused the rules: {output.strip()}")


def firewall(ctx: AgentContext) -> IsolationFirewall | None:
    """The firewall part, when the container runtime has network hooks and the
    agent may and can keep a firewall (built after Jobs exist, before they start)."""
    runtime: object = ctx.runtimes.container  # any runtime may have the capabilities
    if not isinstance(runtime, HasNetworkHooks) or not isinstance(runtime, HasEngine):
        return None
    if not ctx.settings.isolation_firewall:
        log.info("--no-isolation-firewall: keeping jobs apart is left to the container engine")
        return None
    reason = unavailable()
    if reason is not None:
        log.warning(
            "keeping jobs apart is left to the container engine (%s; "
            "netavark 1.4 is known to lose its isolation rules)",
            reason,
        )
        return None
    part = IsolationFirewall(runtime, ctx.device_id)
    runtime.network_hooks.append(part.reconcile_quietly)
    return part
