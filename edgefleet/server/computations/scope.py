"""What a list of computations or of datasets is narrowed to: both are asked
for by project and dataset name, from the API and from the portal."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """``None`` leaves that side open; the caller's own visibility always applies."""

    project_pk: int | None = None
    dataset: str | None = None


EVERYTHING = Scope()
