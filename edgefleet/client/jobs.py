"""Calls about jobs: deploying a version to devices, following its rollout,
and the runs of periodic jobs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edgefleet.client.models import Job, JobDevice, JobRun
from edgefleet.client.transport import JSON, Transport, compact


class JobCalls(Transport):
    def jobs(self, **filters: Any) -> list[Job]:
        """Jobs you can see; filters as ``GET /jobs`` takes them (``project``,
        ``application``, ``state``, ``limit``, …)."""
        return self._all(Job, "/jobs", **filters)

    def job(self, job_id: str, devices: bool = True) -> Job:
        """The job with its per-state ``device_counts`` and its first 100 devices
        (``devices_next`` is set when there are more: see :meth:`job_devices`).
        NotFound if you cannot see it."""
        return self._get(Job, f"/jobs/{job_id}", devices=None if devices else "false")

    def job_devices(
        self, job_id: str, *, state: str | None = None, limit: int | None = None
    ) -> Iterator[JobDevice]:
        """Every device of a job with its status, page by page; ``state`` filters
        (comma-separated device states)."""
        return self._paged(JobDevice, f"/jobs/{job_id}/devices", limit, state=state)

    def job_runs(
        self,
        job_id: str,
        *,
        device: str | None = None,
        state: str | None = None,
        limit: int | None = None,
    ) -> Iterator[JobRun]:
        """Runs of a periodic job, newest first, page by page: ``device``,
        ``scheduled``, ``started``, ``finished``, ``exit_code``, ``state``
        (ok | failed | skipped). ``device`` and ``state`` filter."""
        return self._paged(JobRun, f"/jobs/{job_id}/runs", limit, device=device, state=state)

    def create_job(
        self,
        application: str,
        *,
        version: str | None = None,
        devices: list[str] | None = None,
        selector: JSON | str | None = None,
        environment: dict[str, str] | None = None,
        start: str | None = None,
        end: str | None = None,
        name: str = "",
        project: str | None = None,
        rollout: JSON | None = None,
        schedule: JSON | str | None = None,
        reservation: str | None = None,
    ) -> Job:
        """Create a job: ``application`` (its latest ``version`` unless named) on
        ``devices`` (ids or names) or those matching ``selector``, between ``start``
        and ``end``. ``rollout`` stages it (``{"max_parallel", "canaries", …}``);
        ``reservation``: run only inside that booking of its project. ``schedule``
        makes it periodic: ``{"cron", "timezone", "overlap"}`` (or a cron string,
        UTC): its one-shot services run at those times on every device, from the
        device's own clock. Raises NotFound for an unknown application or version,
        Invalid for a selector, window or schedule the server refuses, Forbidden
        without the right to deploy in the project."""
        body: JSON = {"application": application, "name": name}
        body.update(
            compact(
                version=version,
                devices=devices,
                selector=selector,
                environment=environment,
                start=start,
                end=end,
                project=project,
                rollout=rollout,
                schedule=schedule,
                reservation=reservation,
            )
        )
        return self._send(Job, "POST", "/jobs", body)

    def update_job(self, job_id: str, **changes: Any) -> Job:
        """Change a job (``version``, ``environment``, ``end``, …; ``None`` values
        are left out). Invalid for a change the server refuses."""
        return self._send(Job, "PATCH", f"/jobs/{job_id}", compact(**changes))

    def cancel_job(self, job_id: str) -> Job:
        """Cancel a job: its workloads are removed from its devices."""
        return self._send(Job, "POST", f"/jobs/{job_id}/cancel")

    def delete_job(self, job_id: str) -> None:
        """Delete a job and its history; NotFound if unknown."""
        self.delete(f"/jobs/{job_id}")

    def rollout(self, job_id: str, action: str) -> Job:
        """Control the job's staged rollout: ``pause``, ``resume``, ``abort``
        (moved devices go back to the previous version) or ``override-locks``
        (upgrades stop waiting for update locks held now). Answers the job;
        NotFound for an unknown action, Conflict when the job has no rollout to
        control."""
        return self._send(Job, "POST", f"/jobs/{job_id}/rollout/{action}")
