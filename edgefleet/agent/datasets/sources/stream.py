"""A stream of the device's collected data (records workloads hand to the agent
through ``EDGEFLEET_DATA_URL``), declared as ``stream:NAME`` or ``stream:JOB/NAME``.

This is a seam, not a reader yet: the agent's data buffer (``edgefleet.agent.data``)
does not offer a query API this module can use. To fill it in, read the buffered
(and already uploaded) records of the stream, take ``record[column]`` of each JSON
object, and reuse :func:`~edgefleet.agent.datasets.sources.base.number` and
:func:`~edgefleet.agent.datasets.sources.base.column_type` as the JSON-lines reader
does. Until then such a dataset is reported with an error and every invitation
for it is declined with that reason.
"""

from __future__ import annotations

from edgefleet.agent.datasets.registry import DatasetSpec
from edgefleet.agent.datasets.sources.base import DatasetError, Description

UNAVAILABLE = "collected-data streams cannot be computed on by this agent version yet"


class StreamSource:
    def __init__(self, spec: DatasetSpec) -> None:
        self.stream = spec.stream or ""

    def describe(self) -> Description:
        raise DatasetError(UNAVAILABLE)

    def column(self, name: str) -> list[float]:
        raise DatasetError(UNAVAILABLE)
