"""The ``acyclic`` import-linter contract (tests/support/import_contracts.py) on
small graphs built by hand: it must find every cycle inside a package, ignore
loops that leave the package, and keep a package whose graph is a DAG."""

from __future__ import annotations

from grimp import ImportGraph

from tests.support.import_contracts import AcyclicContract, strongly_connected


def _graph(*edges: tuple[str, str]) -> ImportGraph:
    graph = ImportGraph()
    for importer, imported in edges:
        graph.add_import(importer=importer, imported=imported)
    return graph


def _contract(*packages: str) -> AcyclicContract:
    return AcyclicContract("no cycles", {}, {"packages": list(packages)})


def test_a_dag_is_kept() -> None:
    graph = _graph(("p.a", "p.b"), ("p.b", "p.c"), ("p.a", "p.c"))
    assert strongly_connected(graph, {"p.a", "p.b", "p.c"}) == []
    assert _contract("p").check(graph, verbose=False).kept


def test_every_cycle_inside_the_package_is_reported() -> None:
    graph = _graph(
        ("p.a", "p.b"),
        ("p.b", "p.a"),  # a two-module loop
        ("p.c", "p.d"),
        ("p.d", "p.e"),
        ("p.e", "p.c"),  # a three-module loop
        ("p.e", "p.f"),  # leaves the loop: not part of it
    )
    check = _contract("p").check(graph, verbose=False)
    assert not check.kept
    found = check.metadata["cycles"]["p"]
    assert [entry["members"] for entry in found] == [["p.a", "p.b"], ["p.c", "p.d", "p.e"]]
    assert found[0]["loop"] == ["p.a", "p.b", "p.a"]  # a concrete path: where to cut


def test_a_loop_through_another_package_is_not_this_packages_cycle() -> None:
    graph = _graph(("p.a", "q.x"), ("q.x", "p.b"), ("p.b", "p.a"))
    assert _contract("p").check(graph, verbose=False).kept
    assert _contract("q").check(graph, verbose=False).kept


def test_the_package_module_itself_counts() -> None:
    graph = _graph(("p", "p.dashboard"), ("p.dashboard", "p"))  # portal <-> portal.dashboard
    assert strongly_connected(graph, {"p", "p.dashboard"}) == [["p", "p.dashboard"]]
