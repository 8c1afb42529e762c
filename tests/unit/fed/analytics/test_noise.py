"""Differential privacy with the noise added on the devices: each device's share
is drawn so that the released sum carries (at least) the stated Laplace noise,
the server never gets the exact sum, and the result states the epsilon spent."""

from __future__ import annotations

import math
import random
import statistics

from edgefleet.fed import crypto
from edgefleet.fed.analytics.noise import share
from edgefleet.fed.messages import Invitation, Task
from edgefleet.fed.simulate import identities, run
from edgefleet.fed.stats import contribution, noise_scale, release, task_params

NAMES = ["p1", "p2", "p3", "p4", "p5"]


def test_shares_of_t_parties_sum_to_laplace() -> None:
    """Sum of t shares: mean 0, variance 2 b^2, P(|X| > b) = 1/e, as Laplace(b)."""
    rng = random.Random(3)
    b, t = 2.0, 4
    sums = [sum(share(1, b, t, rng)[0] for _ in range(t)) for _ in range(40_000)]
    assert abs(statistics.fmean(sums)) < 0.05
    assert math.isclose(statistics.pvariance(sums), 2 * b * b, rel_tol=0.05)
    tail = sum(abs(x) > b for x in sums) / len(sums)
    assert math.isclose(tail, math.exp(-1), rel_tol=0.05)


def test_a_dp_mean_is_within_the_stated_noise_and_states_its_epsilon() -> None:
    rng = random.Random(5)
    rows = {p: [(rng.uniform(0, 50),) for _ in range(2000)] for p in NAMES}
    task = Task(
        project="p", dataset="d", op="mean", column="x", epsilon=0.5, bounds={"x": (0.0, 50.0)}
    )
    keys = identities(NAMES)
    invitation = Invitation(
        computation_id="dp",
        parties={p: crypto.public_key(k) for p, k in keys.items()},
        threshold=3,
        params=task_params(task),
        task=task,
    )
    vectors = {p: contribution(task, ["x"], rows[p], 3) for p in NAMES}
    outcome = run(invitation, keys, vectors)
    assert outcome.result is not None
    exact_n = 2000 * len(NAMES)
    exact_sum = math.fsum(x for p in NAMES for (x,) in rows[p])
    summed = outcome.aggregator.result_exact()
    scale = noise_scale(task)
    assert scale == (1 + 50) / 0.5  # L1 sensitivity of (n, sum) over epsilon
    # noise is there (the server never saw the exact sum) and within the stated scale
    assert summed[1] != exact_sum and 0 < abs(float(summed[1]) - exact_sum) < 20 * scale
    assert abs(float(summed[0]) - exact_n) < 20 * scale
    result = release(task, summed)
    assert result.epsilon == 0.5 and result.noise_scale == scale
    # The mean of the two noisy sums: within what noise of 20 scales on each allows
    # (a Laplace draw beyond that has probability e**-20; a fixed bound of 1.0 failed
    # about once in a hundred runs, when the count's noise was near 5 scales).
    assert result.value is not None
    low = (exact_sum - 20 * scale) / (exact_n + 20 * scale)
    high = (exact_sum + 20 * scale) / (exact_n - 20 * scale)
    assert low < result.value < high
