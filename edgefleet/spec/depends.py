"""``depends_on`` and ``links``: reading them, then checking the graph they make.

The graph checks run once every service is read: a dependency must name a
service of the file, not the service itself, not close a cycle (the agent
could never start any of them), and ``service_healthy`` needs a healthcheck
on the service waited for, because the agent only knows health from the spec.
"""

from __future__ import annotations

from typing import Any

from edgefleet.spec import keys, units, values
from edgefleet.spec.draft import Draft, Handler
from edgefleet.spec.findings import Path, Report
from edgefleet.spec.model import Dependency

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


def depends_on(d: Draft, value: Any, path: Path) -> None:
    found: dict[str, Dependency] = d.fields.setdefault("depends_on", {})
    if isinstance(value, list):
        for i, item in enumerate(value):
            name = values.text(d.report, item, (*path, i))
            if name is not None:
                found[name] = Dependency()
                d.depends_paths[name] = (*path, i)
        return
    if not isinstance(value, dict):
        d.report.invalid(
            path, f"expected a list of services or a mapping, not {values.kind(value)}"
        )
        return
    for name, rule in value.items():
        at = (*path, name)
        d.depends_paths[name] = at
        rule = values.mapping(d.report, rule, at)
        values.check_keys(d.report, rule, at, keys.DEPENDS_KEYS)
        condition = rule.get("condition", "service_started")
        if condition not in CONDITIONS:
            d.report.invalid(
                (*at, "condition"),
                f"condition must be one of {', '.join(CONDITIONS)}, not {condition!r}",
            )
            condition = "service_started"
        required = values.convert(
            d.report, rule.get("required", True), (*at, "required"), units.parse_bool
        )
        restart = values.convert(
            d.report, rule.get("restart", False), (*at, "restart"), units.parse_bool
        )
        found[name] = Dependency(
            condition=condition,
            required=True if required is None else required,
            restart=bool(restart),
        )


def links(d: Draft, value: Any, path: Path) -> None:
    """``links: [db, "db:database"]``: the alias becomes a name of the linked service,
    and the link implies a dependency, as in Compose."""
    for i, entry in enumerate(values.string_list(d.report, value, path, single=False) or []):
        service, _, alias = entry.partition(":")
        d.links.append((service, alias or None, (*path, i)))


def check_graph(report: Report, drafts: dict[str, Draft], has_healthcheck: dict[str, bool]) -> None:
    """Report dependencies on unknown services, on themselves, without a healthcheck
    for ``service_healthy``, and every cycle (once)."""
    for name, d in drafts.items():
        for link, _alias, at in d.links:
            if link not in drafts:
                report.invalid(at, f"links to service {link!r}, which is not in this file")
            elif link != name:
                d.fields.setdefault("depends_on", {}).setdefault(link, Dependency())
                d.depends_paths.setdefault(link, at)
        for dep, rule in list(d.fields.get("depends_on", {}).items()):
            at = d.depends_paths[dep]
            if dep == name:
                report.error(at, f"service {name} depends on itself; remove this entry")
                del d.fields["depends_on"][dep]
            elif dep not in drafts:
                known = ", ".join(sorted(drafts))
                report.invalid(
                    at, f"depends on service {dep!r}, which is not in this file (services: {known})"
                )
                del d.fields["depends_on"][dep]
            elif rule.condition == "service_healthy" and not has_healthcheck[dep]:
                report.error(
                    at,
                    f"waits for {dep} to be healthy, but {dep} has no healthcheck, so it never "
                    f"would be: add a healthcheck to {dep}, or use condition: service_started",
                )
    _cycles(report, drafts)


def _cycles(report: Report, drafts: dict[str, Draft]) -> None:
    edges = {name: sorted(d.fields.get("depends_on", {})) for name, d in drafts.items()}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []
    seen: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    loop = " -> ".join([*cycle, nxt])
                    report.error(
                        drafts[node].depends_paths[nxt],
                        f"dependency cycle {loop}: none of these services could ever start; "
                        "remove one of the dependencies",
                    )
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)


def apply_link_aliases(drafts: dict[str, Draft]) -> None:
    for d in drafts.values():
        for link, alias, _at in d.links:
            if alias and link in drafts:
                aliases = drafts[link].fields.setdefault("aliases", [])
                if alias not in aliases:
                    aliases.append(alias)


HANDLERS: dict[str, Handler] = {"depends_on": depends_on, "links": links}
