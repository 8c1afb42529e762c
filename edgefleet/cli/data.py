"""``edgefleet data``: download what a job's workloads collected.

edgefleet data JOB [--device D] [--stream S] [--since T] [--until T]
                   [--format jsonl|csv|parquet] [-o FILE]
edgefleet data summary JOB          records, last record, backlog per device
edgefleet data files JOB            uploaded files
edgefleet data get-file JOB ID -o FILE
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from typer.core import TyperGroup

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, ago, err_console, fail, show_list


class _ExportByDefault(TyperGroup):
    """``edgefleet data JOB ...`` means ``edgefleet data export JOB ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["export", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_ExportByDefault,
    help="Collected data: records and files a job's workloads sent (JOB downloads records).",
    no_args_is_help=True,
)

FORMATS = ("jsonl", "csv", "parquet")


@app.command("export")
def export(
    job: str = typer.Argument(..., help="job id"),
    device: str = typer.Option(None, "--device", "-d", help="only this device (id or name)"),
    stream: str = typer.Option(None, "--stream", help="only this stream"),
    since: str = typer.Option(None, "--since", help="records stored at or after (ISO 8601)"),
    until: str = typer.Option(None, "--until", help="records stored before (ISO 8601)"),
    format: str = typer.Option("jsonl", "--format", "-f", help="jsonl, csv or parquet"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="file to write (default: stdout)"
    ),
) -> None:
    """Download a job's records (all devices and streams unless filtered)."""
    if format not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}", 2)
    if output is None and format == "parquet" and sys.stdout.isatty():
        raise fail("parquet is binary: give -o FILE", 2)
    rows = format != "parquet"
    columns: list[Any] = [TextColumn("[bold]{task.description}")]
    columns += [BarColumn(), MofNCompleteColumn()] if rows else [DownloadColumn()]
    progress = Progress(
        *columns, TimeElapsedColumn(), console=err_console, disable=not err_console.is_terminal
    )
    task = progress.add_task(f"{job} {format}", total=None)
    header_left = 1 if format == "csv" else 0

    def advance(chunk: bytes, total: int | None) -> None:
        nonlocal header_left
        if not rows:
            progress.update(task, advance=len(chunk))
            return
        lines = chunk.count(b"\n")
        skip = min(header_left, lines)
        header_left -= skip
        progress.update(task, advance=lines - skip, total=total)

    with ExitStack() as stack:
        sink: BinaryIO = stack.enter_context(open(output, "wb")) if output else sys.stdout.buffer
        client = stack.enter_context(config.client())
        with progress:
            written = client.download_data(
                job,
                sink,
                format=format,
                device=device,
                stream=stream,
                since=since,
                until=until,
                progress=advance,
            )
    if output:
        err_console.print(f"wrote {written} bytes to {output}", highlight=False)


@app.command("summary")
def summary(job: str = typer.Argument(..., help="job id"), fmt: Format = OutputOption) -> None:
    """Per device and stream: records on the server, the last one, what waits on the device."""
    with config.client() as client:
        result = client.data_summary(job)
    show_list(
        result["items"],
        [
            ("DEVICE", lambda i: i.get("device_name") or i["device"]),
            ("STREAM", lambda i: i.get("stream") or "-"),
            ("RECORDS", lambda i: i.get("records", 0)),
            ("LAST", lambda i: ago(i.get("last_time"))),
            ("BACKLOG", lambda i: i.get("backlog", 0)),
            ("EVICTED", lambda i: i.get("evicted", 0)),
            ("FILES", lambda i: i.get("files", 0)),
        ],
        fmt,
    )


@app.command("files")
def files(
    job: str = typer.Argument(..., help="job id"),
    device: str = typer.Option(None, "--device", "-d", help="only this device (id or name)"),
    fmt: Format = OutputOption,
) -> None:
    """Files the job's workloads uploaded (download one with get-file)."""
    with config.client() as client:
        items = client.data_files(job, device=device)
    show_list(
        items,
        [
            ("ID", lambda f: f["id"]),
            ("DEVICE", lambda f: f["device"]),
            ("NAME", lambda f: f["name"]),
            ("SIZE", lambda f: f["size"]),
            ("TIME", lambda f: ago(f["time"])),
        ],
        fmt,
    )


@app.command("get-file")
def get_file(
    job: str = typer.Argument(..., help="job id"),
    file_id: str = typer.Argument(..., help="file id (see `edgefleet data files JOB`)"),
    output: Path = typer.Option(..., "--output", "-o", help="file to write"),
) -> None:
    """Download one uploaded file."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    )
    task = progress.add_task(file_id, total=None)

    def advance(chunk: bytes, total: int | None) -> None:
        progress.update(task, advance=len(chunk), total=total)

    with config.client() as client, open(output, "wb") as sink, progress:
        written = client.download_file(job, file_id, sink, progress=advance)
    err_console.print(f"wrote {written} bytes to {output}", highlight=False)
