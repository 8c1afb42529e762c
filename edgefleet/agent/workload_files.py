"""Secrets and configs as files inside workloads, kept on a tmpfs, never on disk.

The server sends each secret sealed to this device's X25519 key
(:mod:`edgefleet.wire.sealed`); ``desired.json`` holds only that ciphertext.
Right before a workload is created the agent opens the secrets it uses and
writes them, with its configs, to a per-workload directory on a tmpfs::

    <files dir>/                          0700, on a tmpfs (default
      <workload name>/                    $XDG_RUNTIME_DIR or /dev/shm)
        .edgefleet-files                  marker: this directory is ours to remove
        secret-0-db_password              0444 (or the service's mode)
        config-0-app.conf

The container runtime bind-mounts each file read-only at its target
(``/run/secrets/NAME`` for a secret). A tmpfs lives in memory: a reboot wipes
it, and the agent writes the files again from the sealed copies when it
brings the workloads back. The directory goes when its workload is removed
(:func:`forget`). A directory that is not on a tmpfs, or one inside the state
dir, is refused: the clear value would then reach the disk.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.base import WorkloadFile, inputs_digest, workload_name
from edgefleet.spec.model import FileRef
from edgefleet.wire.sealed import SealError, associated_data, open_sealed
from edgefleet.wire.workload import JobAssignment

log = logging.getLogger(__name__)

MARKER = ".edgefleet-files"
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def filesystem_of(path: Path) -> str | None:
    """The type of the filesystem ``path`` is on, from /proc/mounts (Linux)."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, kind = "", None
    target = str(path.resolve())
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def default_dir() -> Path:
    """``$XDG_RUNTIME_DIR/edgefleet-files`` when that is a tmpfs, else /dev/shm."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and filesystem_of(Path(runtime_dir)) in MEMORY_FILESYSTEMS:
        return Path(runtime_dir) / "edgefleet-files"
    return Path("/dev/shm") / f"edgefleet-files-{os.getuid()}"


class WorkloadFiles:
    """The executor's file hook: ``(assignment, revision, service) -> files``."""

    def __init__(self, private_key: str | None, device_id: str, root: Path, state_dir: Path):
        self.private_key = private_key
        self.device_id = device_id
        self.root = root
        self.state_dir = state_dir
        self._checked = False

    def _check_root(self) -> None:
        if self._checked:
            return
        root = self.root.resolve()
        if root.is_relative_to(self.state_dir.resolve()):
            raise RuntimeFailure(
                f"--files-dir {self.root} is inside the state dir, which is on disk: secrets "
                "must stay in memory; choose a directory on a tmpfs"
            )
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        kind = filesystem_of(root)
        if kind not in MEMORY_FILESYSTEMS:
            raise RuntimeFailure(
                f"--files-dir {self.root} is on {kind or 'an unknown filesystem'}, not a tmpfs: "
                "secrets would reach the disk; give a directory on a tmpfs"
            )
        os.chmod(root, 0o700)
        self._checked = True

    def __call__(
        self, assignment: JobAssignment, revision: str, service: str
    ) -> list[WorkloadFile]:
        spec = assignment.spec.services[service]
        if not spec.secrets and not spec.configs:
            return []
        self._check_root()
        name = workload_name(
            assignment.job_id, self.device_id, revision, service, inputs_digest(spec)
        )
        where = self.root / name  # the workload's own name: old and new never share
        where.mkdir(mode=0o755, exist_ok=True)
        os.chmod(where, 0o755)  # readable by a non-root user in the container
        (where / MARKER).touch()
        try:
            return self._write_all(assignment, service, where)
        except RuntimeFailure:  # the workload will not be created: leave nothing behind
            shutil.rmtree(where, ignore_errors=True)
            raise

    def _write_all(
        self, assignment: JobAssignment, service: str, where: Path
    ) -> list[WorkloadFile]:
        spec = assignment.spec.services[service]
        files: list[WorkloadFile] = []
        for i, ref in enumerate(spec.secrets):
            data = self._secret(assignment, ref)
            files.append(self._write(where, f"secret-{i}", ref, data))
        for i, ref in enumerate(spec.configs):
            if ref.content is None:
                source = assignment.spec.configs.get(ref.source)
                name = (source.name if source else None) or ref.source
                raise RuntimeFailure(
                    f"config {ref.source}: no value for this device; set the variable {name} "
                    "(edgefleet variables set)"
                )
            files.append(self._write(where, f"config-{i}", ref, ref.content.encode()))
        return files

    def _secret(self, assignment: JobAssignment, ref: FileRef) -> bytes:
        source = assignment.spec.secrets.get(ref.source)
        name = (source.name if source else None) or ref.source
        sealed = assignment.secrets.get(name)
        if sealed is None or ref.version is None or sealed.version != ref.version:
            raise RuntimeFailure(
                f"secret {name} was not delivered to this device (deleted on the server, or the "
                "device has no key yet)"
            )
        if not self.private_key:
            raise RuntimeFailure(f"secret {name}: this device has no key to open it")
        aad = associated_data(self.device_id, assignment.job_id, name, sealed.version)
        try:
            return open_sealed(self.private_key, sealed.sealed, aad)
        except SealError as exc:
            raise RuntimeFailure(f"secret {name}: {exc}") from exc

    @staticmethod
    def _write(where: Path, prefix: str, ref: FileRef, data: bytes) -> WorkloadFile:
        path = where / f"{prefix}-{_UNSAFE.sub('_', Path(ref.target).name)}"
        tmp = path.with_name(f".{path.name}.tmp")
        mode = 0o444 if ref.mode is None else ref.mode
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        return WorkloadFile(host_path=path, target=ref.target)


def forget(sources: Iterable[str]) -> None:
    """Remove the file directories of a removed workload (given its mounts' sources)."""
    for source in sources:
        parent = Path(source).parent
        if (parent / MARKER).exists():
            shutil.rmtree(parent, ignore_errors=True)


def rehydrate(hook: WorkloadFiles, assignments: list[JobAssignment]) -> None:
    """After a reboot the tmpfs is empty while the engine may still hold (and
    restart) containers that mount its files: write them again, from the sealed
    copies in the desired state, before anything is started."""
    from edgefleet.agent.changes.plan import revision_of

    for assignment in assignments:
        revision = revision_of(assignment)
        for name, service in assignment.spec.services.items():
            if not service.secrets and not service.configs:
                continue
            try:
                hook(assignment, revision, name)
            except RuntimeFailure as exc:  # reported when the job is applied
                log.warning("job %s service %s: %s", assignment.job_id, name, exc.message)


def mount_sources(info: dict[str, Any]) -> list[str]:
    """Bind sources of an inspected container (Engine API ``Mounts``)."""
    return [str(m.get("Source")) for m in info.get("Mounts") or [] if m.get("Type") == "bind"]
