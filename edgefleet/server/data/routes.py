"""HTTP: a job's records (pages and downloads), its summary, its files.
Any member of the job's project (viewer and up) may read them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from edgefleet.server.data import export, query, records
from edgefleet.server.data.objects import ObjectStoreError, open_store
from edgefleet.server.data.schemas import FileOut, RecordPage, StreamSummary, Summary
from edgefleet.server.data.tables import DataFile
from edgefleet.server.deps import CallerDep, Ctx, Db, Paging
from edgefleet.server.errors import Unavailable
from edgefleet.server.jobs import service as jobs
from edgefleet.server.pagination import Page
from edgefleet.server.schemas import _aware

router = APIRouter(tags=["data"])

Format = Literal["json", "jsonl", "csv", "parquet"]
DeviceQ = Annotated[str | None, Query(description="device id or name")]
StreamQ = Annotated[str | None, Query(description="stream name")]
SinceQ = Annotated[datetime | None, Query(description="records stored at or after (ISO 8601)")]
UntilQ = Annotated[datetime | None, Query(description="records stored before (ISO 8601)")]


@router.get(
    "/jobs/{job}/data",
    response_model=RecordPage,
    responses={200: {"content": {m: {} for m in export.MEDIA.values()}}},
)
async def job_data(
    job: str,
    caller: CallerDep,
    db: Db,
    ctx: Ctx,
    page: Paging,
    device: DeviceQ = None,
    stream: StreamQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    format: Annotated[
        Format, Query(description="json (pages), or a download: jsonl, csv, parquet")
    ] = "json",
) -> Response:
    found = await jobs.find(db, caller, job)
    filters = query.Filters(
        found.pk,
        await query.device_id(db, found, device),
        stream,
        _aware(since) if since else None,
        _aware(until) if until else None,
    )
    if format == "json":
        listed = await query.record_page(db, filters, page)
        lines = (records.line(r) for r in listed.items)
        body = b'{"items": [' + b", ".join(x for x in lines if x is not None)
        body += b'], "next": ' + json.dumps(listed.next).encode() + b"}"
        return Response(body, media_type="application/json")
    total = await query.count(db, filters)
    produce = {"jsonl": export.jsonl, "csv": export.csv_rows, "parquet": export.parquet}[format]
    return StreamingResponse(
        produce(ctx.session, filters),
        media_type=export.MEDIA[format],
        headers={
            "content-disposition": f'attachment; filename="{found.id}-data.{format}"',
            "x-record-count": str(total),
        },
    )


@router.get("/jobs/{job}/data/summary", response_model=Summary)
async def data_summary(job: str, caller: CallerDep, db: Db) -> Summary:
    """Per device and stream: records on the server, the last one's time, what
    still waits on the device (backlog) and what its quota made it drop."""
    found = await jobs.find(db, caller, job)
    items = [StreamSummary.model_validate(i) for i in await query.summary(db, found)]
    return Summary(
        job=found.id,
        items=items,
        records=sum(i.records for i in items),
        backlog=sum(i.backlog for i in items),
        evicted=sum(i.evicted for i in items),
    )


def _file_out(f: DataFile) -> FileOut:
    return FileOut(
        id=f.id,
        device=f.device_id,
        seq=f.seq,
        name=f.name,
        size=f.size,
        sha256=f.sha256,
        time=f.time,
    )


@router.get("/jobs/{job}/files", response_model=Page[FileOut])
async def job_files(
    job: str, caller: CallerDep, db: Db, page: Paging, device: DeviceQ = None
) -> Page[FileOut]:
    found = await query.files(db, await jobs.find(db, caller, job), page, device)
    return Page(items=[_file_out(f) for f in found.items], next=found.next)


@router.get("/jobs/{job}/files/{file}", response_model=FileOut)
async def job_file(job: str, file: str, caller: CallerDep, db: Db) -> FileOut:
    found = await jobs.find(db, caller, job)
    return _file_out(await query.file(db, found, file))


@router.get("/jobs/{job}/files/{file}/content", response_class=StreamingResponse)
async def job_file_content(job: str, file: str, caller: CallerDep, db: Db, ctx: Ctx) -> Response:
    found = await jobs.find(db, caller, job)
    item = await query.file(db, found, file)
    try:
        store = open_store(ctx.settings.object_store, ctx.settings.data_dir)
    except ObjectStoreError as exc:
        raise Unavailable(exc.message) from exc
    safe = item.name.replace('"', "_")
    return StreamingResponse(
        store.read(item.key),
        media_type="application/octet-stream",
        headers={
            "content-disposition": f'attachment; filename="{safe}"',
            "content-length": str(item.size),
            "x-sha256": item.sha256,
        },
    )
