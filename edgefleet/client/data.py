"""Calls about data: datasets declared on devices, federated computations over
them, and the records and files a job's workloads sent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from edgefleet.client.models import Computation, DataFile, Dataset, DataSummary, Record
from edgefleet.client.transport import JSON, Transport, compact

Progress = Callable[[bytes, int | None], None]


class DataCalls(Transport):
    # -- federated computations -----------------------------------------------------------

    def datasets(
        self,
        *,
        project: str | None = None,
        dataset: str | None = None,
        device: str | None = None,
    ) -> list[Dataset]:
        """Datasets declared on devices, one item per (device, dataset): columns with
        types, approximate rows and bytes, the owner's policy. Never a value."""
        return self._all(Dataset, "/datasets", project=project, dataset=dataset, device=device)

    def compute(
        self,
        dataset: str,
        op: str,
        column: str | None,
        *,
        devices: list[str] | None = None,
        selector: JSON | str | None = None,
        bins: list[float] | None = None,
        project: str | None = None,
        round_timeout: float | None = None,
        wait: bool = False,
        timeout: float = 600.0,
        **query: Any,
    ) -> Computation:
        """Ask for a secure aggregate (``count``, ``sum``, ``mean``, ``variance``,
        ``histogram`` with ``bins`` edges, ``quantile``, ``covariance``, ``ols``) of
        ``column`` of ``dataset`` over ``devices`` (ids or names) or a label
        ``selector``. ``query`` takes the analytics fields of ``POST /computations``:
        ``columns``, ``where`` (``[{"column", "op", "value"}]``), ``group_by`` with
        ``groups``, ``quantiles``, ``epsilon`` with ``bounds``. Returns the computation
        (``id``, ``state``); with ``wait``, polls until it is ``done`` or ``failed``.
        A refused request raises :class:`~edgefleet.client.errors.ApiError` (4xx)."""
        body: JSON = {"dataset": dataset, "op": op}
        body.update(
            compact(
                column=column,
                devices=devices,
                selector=selector,
                bins=bins,
                project=project,
                round_timeout=round_timeout,
                **query,
            )
        )
        created = self._send(Computation, "POST", "/computations", body)
        return self.wait_computation(created["id"], timeout) if wait else created

    def computation(self, computation_id: str) -> Computation:
        """One computation: ``state`` (running, done, failed, refused), ``result``,
        ``participants``, ``dropped``, per-device ``parties`` and ``error``.
        NotFound if you cannot see it."""
        return self._get(Computation, f"/computations/{computation_id}")

    def computations(self, **filters: Any) -> list[Computation]:
        """Computations of the caller's projects (filters: project, dataset, state)."""
        return self._all(Computation, "/computations", **filters)

    def wait_computation(
        self, computation_id: str, timeout: float = 600.0, interval: float = 0.5
    ) -> Computation:
        """Poll until the computation is no longer running (or ``timeout`` passes:
        then it answers the computation still ``running``, it does not raise)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.computation(computation_id)
            if found["state"] != "running" or time.monotonic() >= deadline:
                return found
            time.sleep(interval)

    # -- collected data -------------------------------------------------------------------

    def data(
        self,
        job: str,
        *,
        device: str | None = None,
        stream: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Record]:
        """A job's records (``device, stream, seq, time, id, record``) in the order
        the server stored them, following pages; ``since``/``until`` are ISO times."""
        path = f"/jobs/{job}/data"
        return self._paged(
            Record, path, limit, device=device, stream=stream, since=since, until=until
        )

    def data_summary(self, job: str) -> DataSummary:
        """Per device and stream: records held, last record time, device backlog, evictions."""
        return self._get(DataSummary, f"/jobs/{job}/data/summary")

    def download_data(
        self,
        job: str,
        sink: BinaryIO,
        *,
        format: str = "jsonl",
        device: str | None = None,
        stream: str | None = None,
        since: str | None = None,
        until: str | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Write a job's records to ``sink`` as ``jsonl``, ``csv`` or ``parquet``;
        ``progress(chunk, total_records)`` is called per chunk. Returns the bytes
        written. Raises Invalid for an unknown format, ConnectionFailed when the
        stream breaks."""
        params = {"format": format, "device": device, "stream": stream}
        params.update(since=since, until=until)
        return self._download(f"/api/v1/jobs/{job}/data", params, sink, progress, "x-record-count")

    def data_files(self, job: str, *, device: str | None = None) -> list[DataFile]:
        """Files the job's workloads handed to their agents (metadata)."""
        return self._all(DataFile, f"/jobs/{job}/files", device=device)

    def data_file(self, job: str, file_id: str) -> DataFile:
        """One uploaded file's metadata; NotFound if unknown."""
        return self._get(DataFile, f"/jobs/{job}/files/{file_id}")

    def download_file(
        self, job: str, file_id: str, sink: BinaryIO, progress: Progress | None = None
    ) -> int:
        """Write one uploaded file's bytes to ``sink``; ``progress(chunk, size)``.
        Returns the bytes written."""
        path = f"/api/v1/jobs/{job}/files/{file_id}/content"
        return self._download(path, {}, sink, progress, "content-length")
