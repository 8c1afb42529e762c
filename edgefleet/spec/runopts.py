"""How a service runs: ``restart``, ``healthcheck``, ``deploy`` and resource limits."""

from __future__ import annotations

import difflib
from typing import Any

from edgefleet.spec import keys, units, values
from edgefleet.spec.draft import Draft, Handler
from edgefleet.spec.findings import Path
from edgefleet.spec.model import HealthCheck, Ulimit

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
_DEPLOY_RESTART = {"none": "no", "on-failure": "on-failure", "any": "always"}


def restart(d: Draft, value: Any, path: Path) -> None:
    if value is False:  # restart: false, from JSON
        value = "no"
    text = values.text(d.report, value, path)
    if text is None:
        return
    policy, sep, count = text.partition(":")
    if policy not in RESTART_POLICIES or (sep and policy != "on-failure"):
        close = difflib.get_close_matches(policy, RESTART_POLICIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        d.report.invalid(
            path,
            f"restart must be no, always, on-failure[:N] or unless-stopped, not {text!r}{hint}",
        )
        return
    d.set("restart", policy)
    if sep:
        attempts = values.convert(d.report, count, path, units.parse_int)
        if attempts is not None and attempts < 0:
            d.report.invalid(path, "the number of restart attempts cannot be negative")
        elif attempts is not None:
            d.set("restart_max_attempts", attempts)


def healthcheck(d: Draft, value: Any, path: Path) -> None:
    report = d.report
    check = values.mapping(report, value, path)
    values.check_keys(report, check, path, keys.HEALTHCHECK_KEYS)
    if "disable" in check and values.convert(
        report, check["disable"], (*path, "disable"), units.parse_bool
    ):
        d.fields["healthcheck"] = None
        return
    if "test" not in check:
        report.error(
            path,
            "healthcheck needs a test: the agent runs health checks itself and cannot use the "
            'image\'s HEALTHCHECK; add test: ["CMD", ...] or disable: true',
        )
        return
    test = _test(d, check["test"], (*path, "test"))
    fields: dict[str, Any] = {}
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if check.get(key) is not None:
            fields[key] = values.convert(report, check[key], (*path, key), units.parse_duration)
    if check.get("retries") is not None:
        retries = values.convert(report, check["retries"], (*path, "retries"), units.parse_int)
        if retries is not None and retries < 0:
            report.invalid((*path, "retries"), "retries cannot be negative")
        else:
            fields["retries"] = retries
    if test == ["NONE"]:
        d.fields["healthcheck"] = None
    elif test is not None:
        d.set(
            "healthcheck",
            HealthCheck(test=test, **{k: v for k, v in fields.items() if v is not None}),
        )


def _test(d: Draft, value: Any, path: Path) -> list[str] | None:
    if isinstance(value, str):
        if not value.strip():
            d.report.invalid(path, "the test command is empty")
            return None
        return ["CMD-SHELL", value]
    argv = values.string_list(d.report, value, path, single=False)
    if argv is None:
        return None
    if not argv or argv[0] not in ("CMD", "CMD-SHELL", "NONE"):
        d.report.invalid(
            path,
            'a test list starts with "CMD" (a program and its arguments), "CMD-SHELL" (a shell '
            'command) or "NONE"; a plain string is run by the shell',
        )
        return None
    if argv[0] != "NONE" and len(argv) < 2:
        d.report.invalid(path, f"{argv[0]} needs a command after it")
        return None
    return argv


def deploy(d: Draft, value: Any, path: Path) -> None:
    report = d.report
    spec = values.mapping(report, value, path)
    values.check_keys(report, spec, path, keys.DEPLOY_KEYS)
    mode = spec.get("mode", "replicated")
    if mode not in ("replicated", "global"):
        report.invalid(
            (*path, "mode"),
            f"mode {mode!r} is not supported: every service runs once on each device",
        )
    if "replicas" in spec:
        _one_instance(d, spec["replicas"], (*path, "replicas"))
    for key in ("labels", "placement", "update_config", "rollback_config", "endpoint_mode"):
        if key in spec:
            report.warn(
                (*path, key),
                f"{key} is ignored: it configures a Swarm service; a job chooses its devices with its "
                "selector and x-edgefleet.requires",
            )
    if "resources" in spec:
        _resources(d, spec["resources"], (*path, "resources"))
    if "restart_policy" in spec:
        _restart_policy(d, spec["restart_policy"], (*path, "restart_policy"))


def _one_instance(d: Draft, value: Any, path: Path) -> None:
    count = values.convert(d.report, value, path, units.parse_int)
    if count is not None and count != 1:
        d.report.invalid(
            path,
            f"{count} instances requested, but each service runs once per device: to run more, "
            "target more devices with the job, or declare more services",
        )


def _resources(d: Draft, value: Any, path: Path) -> None:
    report = d.report
    spec = values.mapping(report, value, path)
    values.check_keys(report, spec, path, keys.RESOURCES_KEYS)
    limits = values.mapping(report, spec.get("limits"), (*path, "limits"))
    values.check_keys(report, limits, (*path, "limits"), keys.LIMITS_KEYS)
    if "cpus" in limits:
        at = (*path, "limits", "cpus")
        d.deploy_limits["cpus"] = (values.convert(report, limits["cpus"], at, _cpus), at)
    if "memory" in limits:
        at = (*path, "limits", "memory")
        d.deploy_limits["mem_limit"] = (
            values.convert(report, limits["memory"], at, units.parse_size),
            at,
        )
    if "pids" in limits:
        at = (*path, "limits", "pids")
        d.deploy_limits["pids_limit"] = (values.convert(report, limits["pids"], at, _pids), at)
    reservations = values.mapping(report, spec.get("reservations"), (*path, "reservations"))
    values.check_keys(report, reservations, (*path, "reservations"), keys.RESERVATIONS_KEYS)
    if "devices" in reservations:
        report.error((*path, "reservations", "devices"), keys.REFUSED_SERVICE_KEYS["gpus"])
    if reservations.keys() - {"devices"}:
        report.warn(
            (*path, "reservations"),
            "reservations are ignored: devices do not reserve resources; to run only on devices with enough "
            "memory, set x-edgefleet.requires.memory",
        )


def _restart_policy(d: Draft, value: Any, path: Path) -> None:
    report = d.report
    spec = values.mapping(report, value, path)
    values.check_keys(report, spec, path, keys.RESTART_POLICY_KEYS)
    condition = spec.get("condition", "any")
    if not isinstance(condition, str) or condition not in _DEPLOY_RESTART:
        report.invalid(
            (*path, "condition"), f"condition must be none, on-failure or any, not {condition!r}"
        )
        return
    attempts = None
    if spec.get("max_attempts") is not None:
        attempts = values.convert(
            report, spec["max_attempts"], (*path, "max_attempts"), units.parse_int
        )
    for key in ("delay", "window"):
        if spec.get(key) is not None:
            values.convert(report, spec[key], (*path, key), units.parse_duration)
    d.deploy_restart = (_DEPLOY_RESTART[condition], attempts, path)


def _cpus(value: object) -> float:
    cpus = units.parse_number(value)
    if cpus <= 0:
        raise ValueError(f"cpus must be more than 0, not {value!r}")
    return cpus


def cpus(d: Draft, value: Any, path: Path) -> None:
    d.set("cpus", values.convert(d.report, value, path, _cpus))


def mem_limit(d: Draft, value: Any, path: Path) -> None:
    d.set("mem_limit", values.convert(d.report, value, path, units.parse_size))


def _pids(value: object) -> int:
    """A process limit; ``-1`` or ``0`` mean unlimited, as in Compose (stored as 0)."""
    count = units.parse_int(value)
    if count < -1:
        raise ValueError(f"a process limit is a positive number (or -1 for none), not {value!r}")
    return max(count, 0)


def pids_limit(d: Draft, value: Any, path: Path) -> None:
    d.set("pids_limit", values.convert(d.report, value, path, _pids))


def shm_size(d: Draft, value: Any, path: Path) -> None:
    d.set("shm_size", values.convert(d.report, value, path, units.parse_size))


def ulimits(d: Draft, value: Any, path: Path) -> None:
    found: dict[str, Ulimit] = {}
    for name, limit in values.mapping(d.report, value, path).items():
        at = (*path, name)
        if isinstance(limit, dict):
            values.check_keys(d.report, limit, at, keys.ULIMIT_KEYS, extensions=False)
            missing = [k for k in ("soft", "hard") if k not in limit]
            if missing:
                d.report.error(
                    at, f"{' and '.join(missing)} is required (or give one number for both)"
                )
                continue
            soft = values.convert(d.report, limit["soft"], (*at, "soft"), units.parse_int)
            hard = values.convert(d.report, limit["hard"], (*at, "hard"), units.parse_int)
        else:
            soft = hard = values.convert(d.report, limit, at, units.parse_int)
        if soft is None or hard is None:
            continue
        if soft > hard:
            d.report.invalid(at, f"the soft limit {soft} is above the hard limit {hard}")
            continue
        found[name] = Ulimit(soft=soft, hard=hard)
    d.set("ulimits", found)


def sysctls(d: Draft, value: Any, path: Path) -> None:
    found: dict[str, str] = {}
    for name, setting, at in values.pairs(d.report, value, path):
        if not (name.startswith(keys.NAMESPACED_SYSCTLS) or name in keys.NAMESPACED_SYSCTLS_EXACT):
            d.report.invalid(
                at,
                f"sysctl {name} is not namespaced: setting it would change the whole device, so "
                "a container may not; only net.*, kernel.msg*, kernel.sem, kernel.shm* and "
                "fs.mqueue.* are allowed",
            )
            continue
        found[name] = setting or ""
    d.set("sysctls", found)


def stop_grace_period(d: Draft, value: Any, path: Path) -> None:
    d.set("stop_grace_period", values.convert(d.report, value, path, units.parse_duration))


HANDLERS: dict[str, Handler] = {
    "restart": restart,
    "healthcheck": healthcheck,
    "deploy": deploy,
    "cpus": cpus,
    "mem_limit": mem_limit,
    "pids_limit": pids_limit,
    "shm_size": shm_size,
    "ulimits": ulimits,
    "sysctls": sysctls,
    "stop_grace_period": stop_grace_period,
}
