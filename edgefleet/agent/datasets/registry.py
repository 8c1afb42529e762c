"""The declarations: ``<state-dir>/datasets.json``, one entry per dataset.

Written by ``edgefleet agent datasets add|rm`` (atomically, under a lock file so
two commands never lose each other's change), read by the running agent, which
notices the new modification time. The file names the data; it never holds any.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from edgefleet.agent.state import atomic_write
from edgefleet.fed.ops import Op

REGISTRY = "datasets.json"
LOCK = ".datasets.lock"
DEFAULT_MIN_PARTIES = 3

SourceKind = Literal["csv", "jsonl", "parquet", "sqlite", "stream"]
DatasetName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]

_EXTENSIONS: dict[str, SourceKind] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".db": "sqlite",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
}
STREAM_PREFIX = "stream:"


class RegistryError(Exception):
    """A declaration that cannot be made (bad name, unknown format, missing file)."""


class Privacy(BaseModel):
    """What the owner allows beyond who and which op (enforced by ``guard.py``)."""

    model_config = ConfigDict(extra="forbid")

    query_budget: int | None = Field(None, ge=1, description="computations per window")
    budget_window: float = Field(86_400.0, gt=0, le=366 * 86_400, description="seconds")
    min_difference: int | None = Field(
        None, ge=1, description="differencing: parties two answered sets must differ by"
    )
    dp_epsilon: float | None = Field(None, gt=0, le=100, description="total epsilon, ever")
    dp_delta: float | None = Field(None, ge=0, lt=1, description="total delta, ever")


class DatasetSpec(BaseModel):
    """One declared dataset and its owner's policy."""

    model_config = ConfigDict(extra="forbid")

    name: DatasetName
    source: SourceKind
    path: str | None = Field(None, description="absolute path of the file (not for streams)")
    stream: str | None = Field(None, description="collected-data stream, for source=stream")
    min_parties: int = Field(DEFAULT_MIN_PARTIES, ge=2, le=10_000)
    allow_projects: list[str] = Field(
        default_factory=list, description="projects (name or id) that may compute; empty: own"
    )
    allow_ops: list[Op] = Field(default_factory=list, description="empty: every operation")
    added_at: str = ""
    table: str | None = Field(None, max_length=128, description="sqlite: the table to read")
    query: str | None = Field(None, max_length=10_000, description="sqlite: a SELECT to read")
    privacy: Privacy = Field(default_factory=Privacy)
    retain_rows: int = Field(
        1_000_000, ge=1, le=100_000_000, description="stream: records kept, oldest dropped first"
    )


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)


def path_of(state_dir: Path) -> Path:
    return state_dir / REGISTRY


def load(state_dir: Path) -> Registry:
    """The declarations; an absent file is an empty registry, a broken one an error."""
    try:
        return Registry.model_validate_json(path_of(state_dir).read_bytes())
    except FileNotFoundError:
        return Registry()
    except ValidationError as exc:
        raise RegistryError(f"{path_of(state_dir)} is not a valid dataset registry") from exc


@contextlib.contextmanager
def editing(state_dir: Path) -> Iterator[Registry]:
    """Load, let the caller change, save atomically; serialized by a lock file."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        registry = load(state_dir)
        yield registry
        data = registry.model_dump_json(indent=2, exclude_none=True).encode()
        atomic_write(path_of(state_dir), data, 0o600)


def source_of(file: str, fmt: str | None = None) -> tuple[SourceKind, str | None, str | None]:
    """(source, absolute path, stream) for what the owner typed as FILE."""
    if file.startswith(STREAM_PREFIX):
        stream = file[len(STREAM_PREFIX) :]
        if not re.match(r"^[A-Za-z0-9._/-]{1,200}$", stream):
            raise RegistryError(f"{file!r}: expected stream:NAME or stream:JOB/NAME")
        return "stream", None, stream
    path = Path(file).expanduser().resolve()
    if not path.is_file():
        raise RegistryError(f"{file}: no such file")
    if fmt is None:
        kind = _EXTENSIONS.get(path.suffix.lower())
        if kind is None:
            known = ", ".join(sorted(_EXTENSIONS))
            raise RegistryError(f"{file}: unknown format; use --format or one of {known}")
        return kind, str(path), None
    if fmt not in ("csv", "jsonl", "parquet", "sqlite"):
        raise RegistryError(f"--format {fmt!r}: expected csv, jsonl, parquet or sqlite")
    return fmt, str(path), None  # type: ignore[return-value]


def new_spec(
    name: str,
    file: str,
    *,
    fmt: str | None = None,
    min_parties: int = DEFAULT_MIN_PARTIES,
    allow_projects: list[str] | None = None,
    allow_ops: list[str] | None = None,
    table: str | None = None,
    query: str | None = None,
    privacy: Privacy | None = None,
    retain_rows: int = 1_000_000,
) -> DatasetSpec:
    """A declaration, checked (name, format, policy) but not saved."""
    source, path, stream = source_of(file, fmt)
    if source == "sqlite":
        if (table is None) == (query is None):
            raise RegistryError("a SQLite dataset needs --table or --query (one of them)")
        if table is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", table):
            raise RegistryError(f"--table {table!r}: expected a plain table name")
    elif table is not None or query is not None:
        raise RegistryError("--table and --query are for SQLite files only")
    try:
        return DatasetSpec(
            name=name,
            source=source,
            path=path,
            stream=stream,
            min_parties=min_parties,
            allow_projects=list(dict.fromkeys(allow_projects or [])),
            allow_ops=list(dict.fromkeys(allow_ops or [])),
            added_at=datetime.now(UTC).isoformat(timespec="seconds"),
            table=table,
            query=query,
            privacy=privacy or Privacy(),
            retain_rows=retain_rows,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise RegistryError(problems) from exc


def parse_budget(text: str) -> tuple[int, float]:
    """``N/WINDOW`` (``10/1h``, ``100/1d``, ``5/30m``, ``3/90s``): N computations per window."""
    match = re.fullmatch(r"\s*(\d{1,9})\s*/\s*(\d{1,9})?\s*([smhd])\s*", text)
    if match is None or int(match.group(1)) < 1:
        raise RegistryError(f"--query-budget {text!r}: expected N/WINDOW, e.g. 10/1h or 100/1d")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86_400}[match.group(3)]
    window = int(match.group(2) or 1) * unit
    if not 0 < window <= 366 * 86_400:
        raise RegistryError(f"--query-budget {text!r}: the window must be 1 s .. 366 d")
    return int(match.group(1)), float(window)


def copy_into(state_dir: Path, spec: DatasetSpec) -> DatasetSpec:
    """Copy the file into ``<state-dir>/datasets/`` (mode 0600): the copy is what counts."""
    if spec.path is None or spec.source == "stream":
        return spec
    source = Path(spec.path)
    target = state_dir.resolve() / "datasets" / f"{spec.name}{source.suffix.lower()}"
    atomic_write(target, source.read_bytes(), 0o600)
    return spec.model_copy(update={"path": str(target)})


def save(state_dir: Path, spec: DatasetSpec, *, replace: bool = False) -> None:
    with editing(state_dir) as registry:
        if spec.name in registry.datasets and not replace:
            raise RegistryError(f"dataset {spec.name!r} is already declared; use --replace")
        registry.datasets[spec.name] = spec


def remove(state_dir: Path, name: str) -> DatasetSpec:
    """Forget a declaration (and delete the file if it is a copy in the state dir)."""
    with editing(state_dir) as registry:
        spec = registry.datasets.pop(name, None)
        if spec is None:
            raise RegistryError(f"no dataset named {name!r}")
    if spec.path and Path(spec.path).parent == state_dir.resolve() / "datasets":
        Path(spec.path).unlink(missing_ok=True)
    return spec
