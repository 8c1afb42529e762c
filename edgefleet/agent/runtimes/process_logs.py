"""A process workload's output, read back from the files it writes.

A process writes to ``stdout.log`` and ``stderr.log`` in its bookkeeping
directory (:mod:`.process`), never to a pipe, so that it outlives the agent;
its logs are those files, read from the end when only a tail is wanted.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from edgefleet.agent.runtimes.workload import LogLine


def read_lines(path: Path, tail: int | None, block: int = 64 * 1024) -> tuple[list[str], int]:
    """The file's lines (only the last ``tail`` when given) and its size. With a
    tail only the end of the file is read: logs are shipped to the server every
    few seconds (issue 18) and a long-running service's file can be huge."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if tail is None:
                handle.seek(0)
                return handle.read().decode(errors="replace").splitlines(), size
            if tail <= 0:
                return [], size
            start, data = size, b""
            while start > 0 and data.count(b"\n") <= tail:
                start = max(0, start - block)
                handle.seek(start)
                data = handle.read(size - start)
    except OSError:
        return [], 0
    lines = data.decode(errors="replace").splitlines()
    if start > 0:
        lines = lines[1:]  # the first line read may be cut
    return lines[-tail:], size


async def read(
    directory: Path, tail: int | None, follow: bool, exists: Callable[[], bool]
) -> AsyncIterator[LogLine]:
    """The workload's lines, stdout's then stderr's (the last ``tail`` of them);
    with ``follow``, then new complete lines as they are written, until
    ``exists`` says the workload was removed."""
    files = {"stdout": directory / "stdout.log", "stderr": directory / "stderr.log"}
    offsets: dict[str, int] = {}
    lines: list[LogLine] = []
    for stream, path in files.items():
        texts, offsets[stream] = read_lines(path, tail)
        for text in texts:
            lines.append(LogLine(stream=stream, time=None, text=text))  # type: ignore[arg-type]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    for line in lines:
        yield line
    while follow:
        await asyncio.sleep(0.2)
        for stream, path in files.items():
            try:
                with open(path, "rb") as handle:
                    handle.seek(offsets[stream])
                    chunk = handle.read()
            except OSError:
                if not exists():
                    return
                continue
            if not chunk:
                continue
            complete, newline, _rest = chunk.rpartition(b"\n")
            if not newline:
                continue
            offsets[stream] += len(complete) + 1
            for text in complete.decode(errors="replace").split("\n"):
                yield LogLine(stream=stream, time=datetime.now(UTC), text=text)  # type: ignore[arg-type]
