"""Top-level ``volumes``, ``networks`` and ``x-edgefleet``.

A job's volumes and networks are created by the agent on each device, named
per job, so options that pick a storage driver or join networks outside the
job are refused: they would either not exist on a device or break the rule
that jobs never see each other's networks.
"""

from __future__ import annotations

from typing import Any

from edgefleet.spec import keys, units, values
from edgefleet.spec.findings import Path, Report
from edgefleet.spec.model import Network, Requirements, Volume
from edgefleet.spec.mounts import NAME

_ARCH = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv7": "arm",
    "armv6l": "arm",
    "armhf": "arm",
    "i386": "386",
    "i686": "386",
}


def _declared(report: Report, value: Any, path: Path, what: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, options in values.mapping(report, value, path).items():
        if not NAME.match(name):
            report.error(
                (*path, name), f"{name!r} is not a {what} name: use letters, digits, _ . -"
            )
            continue
        found[name] = values.mapping(report, options, (*path, name))
    return found


def volumes(report: Report, value: Any) -> dict[str, Volume]:
    out: dict[str, Volume] = {}
    for name, options in _declared(report, value, ("volumes",), "volume").items():
        at: Path = ("volumes", name)
        values.check_keys(report, options, at, keys.TOP_VOLUME_KEYS)
        driver = options.get("driver", "local")
        if driver != "local":
            report.invalid(
                (*at, "driver"),
                f"volume driver {driver!r} is not available on devices: remove it to use the "
                "engine's local volumes",
            )
        if options.get("driver_opts"):
            report.error(
                (*at, "driver_opts"),
                "driver_opts point a volume at storage of one machine (a host path, an NFS "
                "share), which other devices do not have: remove them, or mount a host path "
                "with a bind mount that the device's policy allows",
            )
        external = values.convert(
            report, options.get("external", False), (*at, "external"), _external
        )
        labels = values.string_map(report, options.get("labels"), (*at, "labels"))
        real = (
            None
            if options.get("name") is None
            else values.text(report, options["name"], (*at, "name"))
        )
        project = options.get("x-edgefleet-project-volume", False) is True
        if project and (not external or real):
            report.invalid(
                (*at, "x-edgefleet-project-volume"),
                "a project volume is written {external: true, x-edgefleet-project-volume: true} "
                "with no name: (the server names it after the job's project)",
            )
            project = False
        if real and not external:
            report.warn(
                (*at, "name"),
                "name is ignored: the agent names a job's volumes itself, so jobs never share one; "
                "set external: true to use a volume that already exists on the device",
            )
            real = None
        if external and not project:
            report.warn(
                at,
                f"external volume {real or name} must already exist on every device the job "
                "runs on; devices without it fail to start the job",
            )
        out[name] = Volume(external=bool(external), labels=labels, name=real, project=project)
    return out


def _external(value: object) -> bool:
    if isinstance(value, dict):  # legacy `external: {name: x}`
        raise ValueError("write external: true, and the volume's name under name:")
    return units.parse_bool(value)


def networks(report: Report, value: Any) -> dict[str, Network]:
    out: dict[str, Network] = {}
    for name, options in _declared(report, value, ("networks",), "network").items():
        at: Path = ("networks", name)
        values.check_keys(report, options, at, keys.TOP_NETWORK_KEYS)
        if options.get("external") not in (None, False):
            report.error(
                (*at, "external"),
                "a job's services may join only the job's own networks (jobs never see each "
                "other's networks): remove external and let the agent create the network",
            )
        driver = options.get("driver", "bridge")
        if driver != "bridge":
            report.invalid(
                (*at, "driver"),
                f"network driver {driver!r} is not supported: a job's networks are private "
                "bridge networks the agent creates; remove driver",
            )
        for key in ("driver_opts", "ipam", "attachable", "enable_ipv4", "enable_ipv6", "name"):
            if key in options:
                report.warn(
                    (*at, key),
                    f"{key} is ignored: the agent creates and names the job's networks itself",
                )
        internal = values.convert(
            report, options.get("internal", False), (*at, "internal"), units.parse_bool
        )
        labels = values.string_map(report, options.get("labels"), (*at, "labels"))
        out[name] = Network(internal=bool(internal), labels=labels)
    return out


def requirements(report: Report, value: Any) -> Requirements:
    """``x-edgefleet: {requires: {peripherals, arch, memory, runtime}}``."""
    at: Path = ("x-edgefleet",)
    section = values.mapping(report, value, at)
    values.check_keys(report, section, at, keys.X_EDGEFLEET_KEYS, extensions=False)
    requires = values.mapping(report, section.get("requires"), (*at, "requires"))
    at = (*at, "requires")
    values.check_keys(report, requires, at, keys.REQUIRES_KEYS, extensions=False)
    fields: dict[str, Any] = {}
    for key in ("peripherals", "arch", "runtime"):
        if requires.get(key) is not None:
            fields[key] = values.string_list(report, requires[key], (*at, key)) or []
    if "arch" in fields:
        # "linux/arm/v7" -> "arm": devices report the architecture without a variant.
        arches = [a.removeprefix("linux/").split("/")[0] for a in fields["arch"]]
        fields["arch"] = list(dict.fromkeys(_ARCH.get(a, a) for a in arches))
    if requires.get("memory") is not None:
        fields["memory"] = values.convert(
            report, requires["memory"], (*at, "memory"), units.parse_size
        )
    return Requirements(**fields)
