"""Where a job's service listens, remembered between proxied requests.

Finding a service's address asks the engine twice (list the job's containers,
inspect each): under load on Podman that was ~19 ms and most of the agent's
CPU per proxied request. The answer changes only when the workload does, and
the agent sees every such change, so it is remembered per (job, service) and
dropped as soon as one of these tells it may be wrong:

    the job's assignment changed          (desired state: checked on every use)
    the supervisor's latest observation   (every SUPERVISE_EVERY, 2 s) no longer
      shows that container running, with the same restart count and address
    a connection to it failed             (the caller :meth:`forget`s it and
                                           looks up once more)

Each job network is a bridge of its own (agent/isolation.py), so an address
freed by a restarted container can only be handed to a container of the same
job before the supervisor's next pass notices; a job no longer assigned is
refused at once. No I/O here besides the engine lookup on a miss.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.jobs import Jobs
from edgefleet.agent.runtimes.workload import Workload
from edgefleet.wire.workload import JobAssignment


@dataclass
class _Entry:
    assignment: JobAssignment
    workload_id: str
    restarts: int
    host: str
    observed: list[Workload]  # the supervisor's observation it was last checked against


class AddressBook:
    """``(job, service) -> host``, checked against what the agent knows on every use."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self._entries: dict[tuple[str, str], _Entry] = {}

    async def find(self, job_id: str, service: str) -> tuple[str, bool]:
        """(host, whether it was remembered). Raises RuntimeFailure when the
        service does not run here or has no address."""
        key = (job_id, service)
        assignment = self.jobs.assignments().get(job_id)
        entry = self._entries.get(key)
        if entry is not None and assignment is not None and self._holds(entry, assignment):
            return entry.host, True
        self._entries.pop(key, None)
        workload, _ = await self.jobs.find_workload(job_id, service)
        what = f"service {service} of job {job_id}"
        if workload.state != "running":
            raise RuntimeFailure(f"{what} is not running (it is {workload.state})")
        if not workload.addresses:
            raise RuntimeFailure(f"{what} has no network address")
        host = workload.addresses[0]
        if assignment is not None:
            assigned = self.jobs.assignments()
            self._entries = {k: e for k, e in self._entries.items() if k[0] in assigned}
            self._entries[key] = _Entry(
                assignment, workload.id, workload.restarts, host, self.jobs.workloads
            )
        return host, False

    def forget(self, job_id: str, service: str) -> None:
        """A connection to the remembered address failed: look it up next time."""
        self._entries.pop((job_id, service), None)

    def _holds(self, entry: _Entry, assignment: JobAssignment) -> bool:
        if assignment is not entry.assignment and assignment != entry.assignment:
            return False
        observed = self.jobs.workloads
        if observed is entry.observed:
            return True  # nothing observed since it was checked
        for workload in observed:
            if workload.id == entry.workload_id:
                fits = (
                    workload.state == "running"
                    and workload.restarts == entry.restarts
                    and entry.host in workload.addresses
                )
                if fits:
                    entry.observed = observed
                return fits
        # not in a newer observation: gone, or that pass began before it was
        # created (then one more lookup, no harm)
        return False
