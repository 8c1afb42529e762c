"""The operations a computation may ask for, apart from the protocol's models so
that the agent's dataset registry (loaded by every idle agent) names them
without loading :mod:`edgefleet.fed.messages`."""

from __future__ import annotations

from typing import Literal

Op = Literal["count", "sum", "mean", "variance", "histogram", "covariance", "ols", "quantile"]
