"""Import-linter contract types the built-in ones do not offer.

``acyclic``: no import cycle among the modules inside each listed package
(issue 17: a cycle means two modules can only change together, and one of
them usually reaches into the other for something that belongs in a third).
import-linter 2.17 checks layers, independence and forbidden imports, but
nothing says "this package's import graph is a DAG", so this contract finds
the strongly connected components of each package's own import graph and
breaks on any with more than one module. Imports under ``TYPE_CHECKING``
count, as they do for the other contracts: a type-only import still ties the
two modules' designs together.

Registered in pyproject.toml (``contract_types``); ``lint-imports`` run from
the repository root finds this module because it puts the working directory
on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Iterable

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


def _within(graph: ImportGraph, package: str) -> set[str]:
    return {m for m in graph.modules if m == package or m.startswith(package + ".")}


def strongly_connected(graph: ImportGraph, modules: set[str]) -> list[list[str]]:
    """The import cycles among ``modules`` (Tarjan's algorithm, iterative so that a
    deep package cannot hit the recursion limit): each component of more than one
    module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def edges(module: str) -> list[str]:
        return sorted(m for m in graph.find_modules_directly_imported_by(module) if m in modules)

    for root in sorted(modules):
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(edges(root))))
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges(child))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def example_cycle(graph: ImportGraph, component: list[str]) -> list[str]:
    """One concrete loop through ``component``, to show where to cut it."""
    members = set(component)
    start = component[0]
    for target in sorted(graph.find_modules_directly_imported_by(start)):
        if target in members:
            back = graph.find_shortest_chain(importer=target, imported=start)
            if back:
                return [start, *back]
    return component


class AcyclicContract(Contract):
    """No import cycle inside any of ``packages`` (imports that leave the package
    are not followed: a cycle through another package is that package's affair
    and the independence/forbidden contracts')."""

    type_name = "acyclic"

    packages = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        cycles: dict[str, list[dict[str, list[str]]]] = {}
        for package in self.packages:  # type: ignore[attr-defined]
            name = package.name
            output.verbose_print(verbose, f"Looking for import cycles inside {name}...")
            components = strongly_connected(graph, _within(graph, name))
            if components:
                cycles[name] = [{"members": c, "loop": example_cycle(graph, c)} for c in components]
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for package, components in check.metadata["cycles"].items():
            output.print_error(f"{package}: {len(components)} import cycle(s)", bold=True)
            output.new_line()
            for entry in components:
                members, loop = entry["members"], entry["loop"]
                output.print_error(f"- {len(members)} modules: {', '.join(members)}", bold=False)
                output.print_error(f"  e.g. {' -> '.join(loop)}", bold=False)
            output.new_line()
