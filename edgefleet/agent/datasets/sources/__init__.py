"""One reader per dataset format, chosen by name and imported only when used
(pyarrow loads only for Parquet datasets)::

    base.py      the Source protocol, DatasetError, shared helpers
    csv_file.py  CSV with a header row        jsonl_file.py  JSON lines (one object a line)
    parquet.py   Parquet (pyarrow)            stream.py      the device's collected data
    sqlite_file.py  a SQLite table or declared SELECT, read-only
"""

from __future__ import annotations

import importlib

from edgefleet.agent.datasets.registry import DatasetSpec
from edgefleet.agent.datasets.sources.base import DatasetError, Description, Source

SOURCES: dict[str, str] = {
    "csv": "edgefleet.agent.datasets.sources.csv_file:CsvSource",
    "jsonl": "edgefleet.agent.datasets.sources.jsonl_file:JsonLinesSource",
    "parquet": "edgefleet.agent.datasets.sources.parquet:ParquetSource",
    "sqlite": "edgefleet.agent.datasets.sources.sqlite_file:SqliteSource",
    "stream": "edgefleet.agent.datasets.sources.stream:StreamSource",
}


def open_source(spec: DatasetSpec) -> Source:
    module_name, _, class_name = SOURCES[spec.source].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    source: Source = cls(spec)
    return source


__all__ = ["SOURCES", "DatasetError", "Description", "Source", "open_source"]
