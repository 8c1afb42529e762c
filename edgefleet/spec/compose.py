"""Compose file -> :class:`~edgefleet.spec.model.AppSpec`, with findings.

The one entry point for application specs: the API validates uploads with
it, and the server parses the stored file again at deploy time with the job's
environment. The steps, each its own module::

    YAML text ──loader──▶ data + line of every key     (a dict from JSON: no lines)
         ──interpolate──▶ ${VAR} resolved (job environment, or none at upload)
             ──extends──▶ same-file extends merged
     ──service/toplevel──▶ each key read by its handler into model fields
          ──cross-checks──▶ depends_on graph, named volumes and networks declared
                        ──▶ AppSpec + findings

Upload time (``environment=None``): every variable is unset, defaults apply,
a variable without one is a warning, and a value that came from a variable
and is invalid is only a warning, since the job's environment decides it.
Deploy time (``environment={...}``): exactly these variables; a missing
``${VAR:?msg}`` and every invalid value are errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from edgefleet.spec import depends, files, keys, toplevel, values
from edgefleet.spec.draft import Draft
from edgefleet.spec.extends import resolve_extends
from edgefleet.spec.findings import Finding, Path, Report, SpecInvalid
from edgefleet.spec.interpolate import interpolate
from edgefleet.spec.loader import load_with_lines, load_yaml
from edgefleet.spec.model import AppSpec, Network, Service, Volume
from edgefleet.spec.service import read_service

__all__ = ["Finding", "SpecInvalid", "load_yaml", "parse", "validate"]

_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def parse(
    source: str | Mapping[str, Any],
    *,
    environment: Mapping[str, str] | None = None,
    builds: bool = False,
) -> tuple[AppSpec, list[Finding]]:
    """Read a Compose file (YAML text, or the parsed mapping) into an :class:`AppSpec`.

    ``environment=None`` validates at upload time; a mapping interpolates with
    exactly those variables (deploy time). Returns the spec and its warnings;
    raises :class:`SpecInvalid` (holding every finding) if there is any error.
    ``builds``: the version carries a build context, so ``build:`` is read."""
    spec, report = _run(source, environment, builds)
    findings = report.ordered()
    if spec is None or report.has_errors:
        raise SpecInvalid(findings)
    return spec, [f for f in findings if f.level == "warning"]


def validate(
    source: str | Mapping[str, Any], *, environment: Mapping[str, str] | None = None
) -> list[Finding]:
    """Every finding, errors and warnings, in file order; never raises."""
    return _run(source, environment, False)[1].ordered()


def _run(
    source: str | Mapping[str, Any], environment: Mapping[str, str] | None, builds: bool
) -> tuple[AppSpec | None, Report]:
    report = Report(upload=environment is None, builds=builds)
    if isinstance(source, str):
        try:
            data, lines = load_with_lines(source)
        except SpecInvalid as exc:
            for finding in exc.findings:
                report.add(finding)
            return None, report
        report.lines = lines
    elif isinstance(source, Mapping):
        data = _plain(source)
    else:  # JSON bodies can hold anything, whatever the annotation says
        report.error((), "a spec is YAML text or a mapping with a services: key")  # type: ignore[unreachable]
        return None, report
    data = interpolate(data, report, environment)
    return _document(report, data, environment), report


def _plain(value: Any) -> Any:
    """JSON-shaped copy: mapping keys as strings, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _document(
    report: Report, data: dict[str, Any], environment: Mapping[str, str] | None
) -> AppSpec | None:
    for key in data:
        if key in keys.REFUSED_TOP_KEYS:
            report.error((key,), keys.REFUSED_TOP_KEYS[key])
    values.check_keys(report, data, (), keys.TOP_KEYS)
    if "version" in data:
        report.warn(
            ("version",),
            "version is obsolete: Compose ignores it and so does edgefleet; remove it",
        )
    if data.get("name") is not None:
        name = values.text(report, data["name"], ("name",))
        if name is not None and not _PROJECT_NAME.match(name):
            report.invalid(
                ("name",), f"{name!r} is not a project name: lowercase letters, digits, _ and -"
            )
    raw_services = data.get("services")
    if not isinstance(raw_services, dict) or not raw_services:
        where: Path = ("services",) if "services" in data else ()
        report.error(
            where,
            "services is required: a mapping of at least one service name to its settings",
        )
        return None
    raw_services = resolve_extends(raw_services, report)
    volumes = toplevel.volumes(report, data.get("volumes"))
    networks = toplevel.networks(report, data.get("networks"))
    declared = {
        kind: files.sources(report, data.get(kind), kind) for kind in ("secrets", "configs")
    }
    requires = toplevel.requirements(report, data["x-edgefleet"]) if "x-edgefleet" in data else None
    drafts = {
        name: read_service(report, name, raw, environment) for name, raw in raw_services.items()
    }
    _check_references(report, drafts, volumes, networks)
    files.check_references(report, list(drafts.values()), declared)
    services: dict[str, Service] = {}
    for name, draft in drafts.items():
        try:
            services[name] = Service.model_validate(draft.fields)
        except ValidationError as exc:  # a handler let a bad value through: still a finding
            report.error(draft.path, f"invalid service: {exc.errors()[0]['msg']}")
    spec = AppSpec(
        services=services,
        volumes=volumes,
        networks=networks,
        secrets=declared["secrets"],
        configs=declared["configs"],
    )
    if requires is not None:
        spec.requires = requires
    return spec


def _check_references(
    report: Report,
    drafts: dict[str, Draft],
    volumes: dict[str, Volume],
    networks: dict[str, Network],
) -> None:
    """What one service names must exist elsewhere in the file."""
    for draft in drafts.values():
        for volume, at in draft.volume_refs:
            if volume not in volumes:
                report.invalid(
                    at,
                    f"volume {volume!r} is not declared: Compose requires named volumes under the "
                    f"top-level volumes: key; add `volumes: {{{volume}: {{}}}}` at the top level "
                    "(or write ./ before a host path)",
                )
        for network, at in draft.network_refs:
            if network != "default" and network not in networks:
                report.invalid(
                    at,
                    f"network {network!r} is not declared: add `networks: {{{network}: {{}}}}` "
                    "at the top level",
                )
    has_healthcheck = {
        name: draft.fields.get("healthcheck") is not None
        or report.from_variable((*draft.path, "healthcheck"))
        for name, draft in drafts.items()
    }
    depends.check_graph(report, drafts, has_healthcheck)
    depends.apply_link_aliases(drafts)
