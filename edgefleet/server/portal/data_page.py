"""The data page (issue 18): pick a job and a stream, plot its numeric fields
over time per device or averaged across devices, with the API's filters
(device, since, until), and download exactly what is shown.

The page is a GET form; the chart (static/data.js, uPlot) reads the same
``GET /api/v1/jobs/{job}/data`` URL the download links point at (with
``format=csv|jsonl|parquet``), so what is plotted and what is downloaded are
one query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from edgefleet.server.data import query
from edgefleet.server.deps import Db
from edgefleet.server.errors import Invalid
from edgefleet.server.jobs import service as jobs
from edgefleet.server.portal import web
from edgefleet.server.portal.jobs import recent_jobs
from edgefleet.server.portal.web import ViewerDep

router = web.page_router()

MODES = ("device", "aggregate")


def _moment(value: str | None, field: str) -> str | None:
    """A datetime-local or ISO value, checked here so a bad one is named, not plotted."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise Invalid(f"{field} is not a date and time", field=field) from exc


@router.get("/data")
async def data_page(
    request: Request,
    viewer: ViewerDep,
    db: Db,
    job: str | None = None,
    stream: str | None = None,
    device: str | None = None,
    since: str | None = None,
    until: str | None = None,
    field: str | None = None,
    mode: str = "device",
) -> Response:
    if mode not in MODES:
        raise Invalid("mode is 'device' or 'aggregate'", field="mode")
    context: dict[str, Any] = {
        "jobs": await recent_jobs(db, viewer),
        "job": None,
        "form": {
            "job": job or "",
            "stream": stream or "",
            "device": device or "",
            "since": since or "",
            "until": until or "",
            "field": field or "",
            "mode": mode,
        },
    }
    if job:
        found = await jobs.find(db, viewer.caller, job)
        summary = await query.summary(db, found)
        streams = sorted({str(i["stream"]) for i in summary if i.get("stream")})
        devices = sorted(
            {(str(i["device"]), str(i.get("device_name") or i["device"])) for i in summary},
            key=lambda d: d[1],
        )
        filters = {
            "stream": stream or (streams[0] if streams else None),
            "device": device or None,
            "since": _moment(since, "since"),
            "until": _moment(until, "until"),
        }
        params = {k: v for k, v in filters.items() if v}
        base = f"/api/v1/jobs/{found.id}/data"
        context |= {
            "job": found,
            "streams": streams,
            "devices": devices,
            "stream": filters["stream"],
            "records_url": f"{base}?{urlencode(params)}",
            "device_names": dict(devices),
            "downloads": {
                fmt: f"{base}?{urlencode({**params, 'format': fmt})}"
                for fmt in ("csv", "jsonl", "parquet")
            },
        }
    return web.render(request, "data.html", context)
