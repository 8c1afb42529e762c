"""The in-process relay's crew: batches of whole parties on threads, handed back in
order as each is done, and a run on two threads carrying the same frames as on one."""

from __future__ import annotations

import functools
import threading

import numpy as np
import pytest

from edgefleet.fed.aggregator import Aggregator
from edgefleet.fed.codec import decode_frame
from edgefleet.fed.messages import Params
from edgefleet.fed.simulate import Crew, Round, Run, benchmark, identities, invite, run


def _empty_run() -> Run:
    names = ["a", "b"]
    params = Params(length=1, ring_bits=64, frac_bits=0, bound=1.0)
    invitation = invite("crew", identities(names), 2, params)
    return Run(result=None, error=None, aggregator=Aggregator(invitation, threads=1))


def test_batches_come_back_in_order_while_later_ones_still_run() -> None:
    out, crew = _empty_run(), Crew(2)
    first_taken = threading.Event()
    count = 80  # 2 threads: batches of 5, so 16 of them

    def step(i: int) -> tuple[int, int]:
        if i == count - 1:  # the last party waits until the first batch was taken
            assert first_taken.wait(10), "the first batch was not handed back before the last"
        return i, threading.get_ident()

    try:
        batches = crew.each(out, [(f"p{i}", functools.partial(step, i)) for i in range(count)])
        names, results = next(batches)
        first_taken.set()
        rest = list(batches)
    finally:
        crew.close()
    assert len(rest) == 15 and len(names) == 5
    every = results + [r for _, batch in rest for r in batch]
    assert [i for i, _ in every] == list(range(count))  # in work's order
    batch_names = [name for batch, _ in [(names, results), *rest] for name in batch]
    assert batch_names == [f"p{i}" for i in range(count)]
    assert threading.get_ident() not in {thread for _, thread in every}  # on the pool
    assert set(out.party_cpu) == set(out.party_seconds) == {f"p{i}" for i in range(count)}
    assert out.party_seconds["p79"] > 0


def test_a_failing_party_fails_the_round_on_one_thread_and_on_two() -> None:
    for threads in (1, 2):
        crew = Crew(threads)

        def step(i: int) -> int:
            if i == 7:
                raise ValueError("party 7 broke")
            return i

        try:
            work = [(f"p{i}", functools.partial(step, i)) for i in range(20)]
            with pytest.raises(ValueError, match="party 7 broke"):
                list(crew.each(_empty_run(), work))
        finally:
            crew.close()


def test_two_threads_carry_the_same_frames_and_sum_as_one() -> None:
    names = [f"p{i:02d}" for i in range(24)]  # above graph.FULL_UP_TO: neighbourhoods
    keys = identities(names)
    invitation = invite(
        "crew-run", keys, 13, Params(length=50, ring_bits=64, frac_bits=16, bound=1e3)
    )
    rng = np.random.default_rng(3)
    vectors = {p: rng.uniform(-100, 100, 50).tolist() for p in names}
    drop: dict[str, Round] = {"p05": "consistency", "p11": "masked"}
    outcomes = [run(invitation, keys, vectors, drop=drop, threads=t) for t in (1, 2)]
    one, two = outcomes
    assert one.result is not None and two.result is not None, (one.error, two.error)
    assert one.result == two.result
    want = np.sum([vectors[p] for p in names if p != "p11"], axis=0)
    assert np.max(np.abs(np.array(one.result) - want)) < 1e-3
    assert one.sent_bytes == two.sent_bytes
    kinds = [sorted(decode_frame(f).type for f in o.transcript) for o in outcomes]
    assert kinds[0] == kinds[1] and "fed.unmask_response" in kinds[0]
    assert set(two.party_cpu) == set(names) and two.aggregator_cpu > 0


def test_the_benchmark_counts_the_runs_context_switches() -> None:
    """The GIL hand-offs that keep a second thread from shortening the run are
    reported beside the times (voluntary context switches of the whole run)."""
    for threads in (1, 2):
        result = benchmark(parties=12, length=64, threads=threads)
        assert isinstance(result.switches, int) and result.switches >= 0
        assert result.max_abs_error < 1e-3
