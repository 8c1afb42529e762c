"""Choice types shared by CLI modules that must stay light (the agent's own
verbs must not import the HTTP client)."""

from __future__ import annotations

from enum import StrEnum


class Op(StrEnum):
    """Federated operations."""

    count = "count"  # type: ignore[assignment]  # shadows str.count; harmless here
    sum = "sum"
    mean = "mean"
    variance = "variance"
    histogram = "histogram"
    quantile = "quantile"
    covariance = "covariance"
    ols = "ols"
