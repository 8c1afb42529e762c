"""The SecAgg+ neighbourhood graph and its parameters."""

from __future__ import annotations

from edgefleet.fed.graph import FULL_UP_TO, choose, neighbourhoods


def test_small_computations_use_the_complete_graph() -> None:
    shape = choose(FULL_UP_TO, FULL_UP_TO // 2 + 1, 0.1, 0.05)
    assert shape.complete and shape.neighbours == FULL_UP_TO - 1
    assert shape.threshold == FULL_UP_TO // 2 + 1


def test_neighbourhoods_grow_like_log_n_with_a_majority_threshold() -> None:
    sizes = {n: choose(n, n // 2 + 1, 0.1, 0.05) for n in (100, 1_000, 10_000)}
    for n, shape in sizes.items():
        assert not shape.complete and shape.neighbours % 2 == 0
        assert shape.threshold == (shape.neighbours + 1) // 2 + 1
        assert shape.neighbours < 64, n
    assert sizes[100].neighbours <= sizes[1_000].neighbours <= sizes[10_000].neighbours
    # more dropouts or more colluders need bigger neighbourhoods
    assert choose(1_000, 501, 0.3, 0.05).neighbours > sizes[1_000].neighbours
    assert choose(1_000, 501, 0.1, 0.2).neighbours > sizes[1_000].neighbours


def test_the_graph_is_regular_symmetric_and_fixed_by_the_digest() -> None:
    parties = tuple(f"d{i:03d}" for i in range(200))
    shape = choose(200, 101, 0.1, 0.05)
    graph = neighbourhoods(parties, b"digest-1", shape)
    assert all(len(near) == shape.neighbours and p not in near for p, near in graph.items())
    assert all(p in graph[q] for p, near in graph.items() for q in near)
    assert neighbourhoods(parties, b"digest-1", shape) == graph
    assert neighbourhoods(parties, b"digest-2", shape) != graph
