"""``GET /fleet``: counts for dashboards and benchmarks, in two queries
(devices by online/ready, jobs by state), whatever the fleet's size."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from edgefleet.server.deps import CallerDep, Db
from edgefleet.server.devices import service as devices
from edgefleet.server.jobs import service as jobs

router = APIRouter(tags=["devices"])


@router.get("/fleet")
async def fleet_summary(caller: CallerDep, db: Db) -> dict[str, Any]:
    counts = await devices.count_status(db, caller)
    return {
        "devices": counts["total"],
        "online": counts["online"],
        "ready": counts["ready"],
        "offline": counts["offline"],
        "jobs": await jobs.count_states(db, caller),
    }
