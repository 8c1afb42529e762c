"""The server's unmasking on several threads (ring.apply_all, Aggregator.threads)
gives exactly the sum one thread gives, self-masks and rebuilt pairwise masks alike."""

from __future__ import annotations

import threading

import numpy as np

from edgefleet.fed.messages import Params
from edgefleet.fed.ring import Masker, MaskJob, Ring, Vector, apply_all
from edgefleet.fed.simulate import identities, invite, run


def test_apply_all_on_threads_equals_one_thread_and_uses_them() -> None:
    ring = Ring(Params(length=257, ring_bits=128, frac_bits=0, bound=1.0))
    seen: set[int] = set()

    def job(i: int) -> MaskJob:
        def apply(masker: Masker, acc: Vector) -> None:
            seen.add(threading.get_ident())
            masker.self_mask(acc, bytes([i]) * 32, "c", f"p{i}", 1 if i % 3 else -1)

        return apply

    jobs = [job(i) for i in range(9)]
    start = ring.encode([1.0] * 257)
    one, two = start.copy(), start.copy()
    apply_all(ring, one, jobs, threads=1)
    seen.clear()
    apply_all(ring, two, jobs, threads=2)
    assert np.array_equal(one, two) and not np.array_equal(one, start)
    assert seen and threading.get_ident() not in seen  # done on the pool


def test_the_aggregator_unmasks_the_same_sum_on_two_threads() -> None:
    names = [f"p{i}" for i in range(7)]
    keys = identities(names)
    invitation = invite(
        "threads", keys, 4, Params(length=300, ring_bits=64, frac_bits=24, bound=1e3)
    )
    rng = np.random.default_rng(5)
    vectors = {p: rng.uniform(-1e3, 1e3, 300).tolist() for p in names}
    results = []
    for threads in (1, 2):  # p3 drops before masking: the server rebuilds its pairwise masks
        outcome = run(invitation, keys, vectors, drop={"p3": "masked"}, threads=threads)
        assert outcome.result is not None, outcome.error
        assert outcome.aggregator.threads == threads
        assert (outcome.aggregator.worker_cpu > 0) == (threads > 1)  # counted, not hidden
        results.append(outcome.aggregator.result_exact())
    assert results[0] == results[1]
    want = np.sum([vectors[p] for p in names if p != "p3"], axis=0)
    assert np.max(np.abs(np.array([float(x) for x in results[0]]) - want)) < 1e-5
