"""Differential privacy with the noise added on the devices.

The released sum must carry Laplace noise of scale b = sensitivity / epsilon on
every element (pure epsilon-DP, delta = 0, against adding or removing one row).
No single party may know the noise, or it could subtract it, and the server
must never see the exact sum: so each device adds only a *share* of it.

A Laplace(b) variable is the difference of two Gamma(1, b) variables, and a
Gamma(1, b) is the sum of t independent Gamma(1/t, b): if each of t devices
adds G1 - G2 with G1, G2 ~ Gamma(1/t, b), the sum carries exactly Laplace(b)
(the continuous counterpart of the Polya construction of distributed
geometric noise). Shares are drawn for t = the protocol's threshold, the least
number of survivors any released sum has: when more survive, the noise is
Gamma(k/t)-differences, larger than Laplace(b), never smaller. A device's own
share hides nothing alone; t - 1 colluding devices that subtract theirs still
leave one honest share, which is weaker than the target (documented).

Noise is drawn from the operating system's generator (``secrets``), never from
a seeded PRNG, and added to the clipped fixed-point vector before masking.
"""

from __future__ import annotations

import random

_SYSTEM = random.SystemRandom()


def scale(sensitivity: float, epsilon: float) -> float:
    """Laplace scale b for one release."""
    return sensitivity / epsilon


def share(
    length: int, noise_scale: float, parties: int, rng: random.Random = _SYSTEM
) -> list[float]:
    """One device's share: ``parties`` shares sum to Laplace(noise_scale) per element."""
    if parties < 1 or noise_scale <= 0:
        raise ValueError("noise needs a positive scale and at least one party")
    shape = 1.0 / parties
    return [
        rng.gammavariate(shape, noise_scale) - rng.gammavariate(shape, noise_scale)
        for _ in range(length)
    ]
