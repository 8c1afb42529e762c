"""One service: dispatch each key to its handler, then check the whole service.

The handler table is the list of supported service keys. Keys Compose knows
but a fleet cannot honour are refused (or ignored with a warning) from the
tables in :mod:`edgefleet.spec.keys`; anything else is an unknown key.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from edgefleet.spec import build, depends, files, keys, mounts, network, runopts, units, values
from edgefleet.spec.draft import Draft, Handler
from edgefleet.spec.findings import Path, Report

_HOSTNAME = re.compile(r"^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)(\.(?!-)[a-zA-Z0-9-]{1,63}(?<!-))*$")
_PLATFORM = re.compile(r"^[a-z0-9_]+/[a-z0-9_]+(/[a-z0-9_.]+)?$")
_POLICY = (
    "only devices whose policy allows it run this service (the agent's --allow-privileged); "
    "others refuse the job"
)
PULL_POLICIES = ("always", "missing", "never", "if_not_present")


def _argv(d: Draft, value: Any, path: Path) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            d.report.invalid(
                path, f"cannot split {value!r} into arguments ({exc}); check the quotes"
            )
            return None
    return values.string_list(d.report, value, path, single=False, numbers=True)


def command(d: Draft, value: Any, path: Path) -> None:
    d.set("command", _argv(d, value, path))


def entrypoint(d: Draft, value: Any, path: Path) -> None:
    d.set("entrypoint", _argv(d, value, path))


def image(d: Draft, value: Any, path: Path) -> None:
    name = values.text(d.report, value, path)
    if name is None:
        return
    if not name.strip() or any(c.isspace() for c in name) or name.startswith("-"):
        d.report.invalid(
            path,
            f"{name!r} is not an image reference such as nginx:1.27 or registry.example.com/app:2",
        )
        return
    d.set("image", name)


def environment(d: Draft, value: Any, path: Path) -> None:
    """A variable without a value takes it from the job's environment, as Compose takes
    it from the shell; at upload time it is left out until then."""
    found: dict[str, str] = {}
    for key, item, _at in values.pairs(d.report, value, path):
        if item is not None:
            found[key] = item
        elif d.environment is not None and key in d.environment:
            found[key] = d.environment[key]
    d.set("environment", found)


def labels(d: Draft, value: Any, path: Path) -> None:
    d.set("labels", values.string_map(d.report, value, path))


def _text_field(name: str, *, numbers: bool = False) -> Handler:
    def handler(d: Draft, value: Any, path: Path) -> None:
        d.set(name, values.text(d.report, value, path, numbers=numbers))

    return handler


def _list_field(name: str, *, numbers: bool = False) -> Handler:
    def handler(d: Draft, value: Any, path: Path) -> None:
        d.set(name, values.string_list(d.report, value, path, numbers=numbers))

    return handler


def _bool_field(name: str) -> Handler:
    def handler(d: Draft, value: Any, path: Path) -> None:
        d.set(name, values.convert(d.report, value, path, units.parse_bool))

    return handler


def hostname(d: Draft, value: Any, path: Path) -> None:
    name = values.text(d.report, value, path)
    if name is not None and not _HOSTNAME.match(name):
        d.report.invalid(
            path, f"{name!r} is not a host name (letters, digits and -, dot-separated)"
        )
        return
    d.set("hostname", name)


def privileged(d: Draft, value: Any, path: Path) -> None:
    flag = values.convert(d.report, value, path, units.parse_bool)
    d.set("privileged", flag)
    if flag:
        d.report.warn(path, f"privileged gives the container full control of the device: {_POLICY}")


def pid(d: Draft, value: Any, path: Path) -> None:
    mode = values.text(d.report, value, path)
    if mode == "host":
        d.set("pid", mode)
        d.report.warn(path, f"pid: host shows the container every process of the device: {_POLICY}")
    elif mode:
        d.report.invalid(
            path,
            f"pid {mode!r} is not supported: only host is, and needs the device's permission; remove it",
        )


def network_mode(d: Draft, value: Any, path: Path) -> None:
    mode = values.text(d.report, value, path)
    if mode is None:
        return
    if mode.startswith(("service:", "container:")):
        d.report.invalid(
            path,
            f"network_mode {mode!r} shares another container's network, which is not supported; "
            "a job's services already share a private network: remove it and reach the other "
            "service by its name",
        )
        return
    if mode not in ("host", "none", "bridge", "default"):
        d.report.invalid(path, f"network_mode must be host, none, bridge or default, not {mode!r}")
        return
    d.set("network_mode", mode)
    if mode == "host":
        d.report.warn(
            path, f"network_mode: host puts the service on the device's own network: {_POLICY}"
        )
    elif mode == "bridge":
        d.report.warn(
            path,
            "network_mode: bridge puts the service on the engine's default network, shared "
            "with everything else on the device, where it cannot reach the job's other services "
            f"by name (remove it to use the job's network): {_POLICY}",
        )


def platform(d: Draft, value: Any, path: Path) -> None:
    text = values.text(d.report, value, path)
    if text is not None and not _PLATFORM.match(text):
        d.report.invalid(path, f"{text!r} is not a platform such as linux/arm64 or linux/arm/v7")
        return
    d.set("platform", text)


def pull_policy(d: Draft, value: Any, path: Path) -> None:
    policy = values.text(d.report, value, path)
    if policy == "build":
        d.report.error(
            path,
            "pull_policy: build needs a build, and devices do not build images: push the image to a registry and use always or missing",
        )
    elif policy is not None and policy not in PULL_POLICIES:
        d.report.invalid(
            path, f"pull_policy must be one of {', '.join(PULL_POLICIES)}, not {policy!r}"
        )
    else:
        d.set("pull_policy", policy)


def profiles(d: Draft, value: Any, path: Path) -> None:
    if values.string_list(d.report, value, path, single=False):
        d.report.warn(
            path,
            "profiles are ignored: the service is deployed with all the others; remove it from "
            "this spec if it should not run",
        )


def container_name(d: Draft, value: Any, path: Path) -> None:
    name = values.text(d.report, value, path)
    if name is None:
        return
    d.fields.setdefault("aliases", []).append(name)
    d.report.warn(
        path,
        "a fleet cannot use fixed container names: each device names containers per job. "
        f"{name!r} is kept as a network alias, so other services still reach it by that name",
    )


def scale(d: Draft, value: Any, path: Path) -> None:
    runopts._one_instance(d, value, path)


HANDLERS: dict[str, Handler] = {
    "image": image,
    "command": command,
    "entrypoint": entrypoint,
    "environment": environment,
    "labels": labels,
    "working_dir": _text_field("working_dir"),
    "user": _text_field("user", numbers=True),
    "hostname": hostname,
    "container_name": container_name,
    "stop_signal": _text_field("stop_signal", numbers=True),
    "init": _bool_field("init"),
    "read_only": _bool_field("read_only"),
    "privileged": privileged,
    "pid": pid,
    "network_mode": network_mode,
    "platform": platform,
    "pull_policy": pull_policy,
    "profiles": profiles,
    "scale": scale,
    "cap_add": _list_field("cap_add"),
    "cap_drop": _list_field("cap_drop"),
    "security_opt": _list_field("security_opt"),
    "group_add": _list_field("group_add", numbers=True),
    **network.HANDLERS,
    **mounts.HANDLERS,
    **runopts.HANDLERS,
    **depends.HANDLERS,
    **files.HANDLERS,
}
KNOWN_KEYS = frozenset(
    {*HANDLERS, *keys.REFUSED_SERVICE_KEYS, *keys.IGNORED_SERVICE_KEYS, "extends"}
)
RUNTIME_KEY = "x-edgefleet-runtime"


def read_service(
    report: Report, name: str, raw: Any, environment: Mapping[str, str] | None
) -> Draft:
    path: Path = ("services", name)
    d = Draft(name, path, report, environment)
    if not mounts.NAME.match(name):
        report.error(
            path,
            f"{name!r} is not a service name: use letters, digits, _ . - (it becomes a DNS name)",
        )
    if not isinstance(raw, dict):
        report.invalid(path, f"a service is a mapping of its settings, not {values.kind(raw)}")
        return d
    runtime = raw.get(RUNTIME_KEY, "container")
    if runtime not in ("container", "process"):
        report.invalid(
            d.at(RUNTIME_KEY), f"{RUNTIME_KEY} must be process or container, not {runtime!r}"
        )
        runtime = "container"
    d.fields["runtime"] = runtime
    for key, value in raw.items():
        at = d.at(key)
        if key == "build":
            build.build(d, value, at)
        elif key in keys.REFUSED_SERVICE_KEYS:
            report.error(at, keys.REFUSED_SERVICE_KEYS[key])
        elif key in keys.IGNORED_SERVICE_KEYS:
            report.warn(at, f"{key} {keys.IGNORED_SERVICE_KEYS[key]}")
        elif key.startswith("x-") or key == "extends":
            continue
        elif key not in HANDLERS:
            report.error(at, values.unknown_key_message(key, KNOWN_KEYS))
        elif runtime == "process" and key in keys.PROCESS_IGNORES:
            report.warn(
                at,
                f"{key} is ignored: a process service ({RUNTIME_KEY}: process) runs directly on the device, not in a container",
            )
        else:
            HANDLERS[key](d, value, at)
    _finish(d, raw)
    return d


def _finish(d: Draft, raw: dict[str, Any]) -> None:
    """Checks that need the whole service."""
    report, fields = d.report, d.fields
    if fields["runtime"] == "process":
        if not fields.get("command") and not fields.get("entrypoint"):
            report.error(
                d.path, "a process service needs a command: the program to run and its arguments"
            )
    elif "image" not in raw and "build" not in raw:
        report.error(
            d.path,
            f"service {d.name} has no image: give image: with a registry your devices can reach, "
            f"or run it as a process with {RUNTIME_KEY}: process and a command",
        )
    for field, (value, at) in d.deploy_limits.items():
        if value is None:
            continue
        if fields.get(field) is not None and fields[field] != value:
            report.invalid(
                at, f"conflicts with the service's {field} ({raw.get(field)}); keep one of them"
            )
        else:
            fields[field] = value
    if d.deploy_restart is not None:
        policy, attempts, at = d.deploy_restart
        if "restart" in raw:
            report.warn(at, "restart_policy is ignored, since the service sets restart")
        else:
            fields["restart"] = policy
            if policy == "on-failure" and attempts:
                fields["restart_max_attempts"] = attempts
    if fields.get("network_mode") and raw.get("networks"):
        report.error(
            d.at("networks"), "networks cannot be combined with network_mode; remove one of them"
        )
