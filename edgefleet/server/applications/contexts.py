"""Build contexts: the tar a version with Compose ``build:`` is uploaded with.

Flow: ``POST /build-contexts?project=P`` streams a tar (at most
``build_context_max_bytes``, else 413) to a temporary file, checks every
entry (no absolute paths, no ``..``, no links leaving the tree, no devices or
FIFOs; else 422 naming the entry), and stores it content-addressed in the
object store under ``build-contexts/p<project pk>/<sha256>.tar``. The
version then names it (``"context": "sha256:…"``); the digest is kept with
the version in its stored spec under :data:`CONTEXT_KEY`. A device fetches
it with its own credential, and only for a job it is assigned and whose
resolved spec names that digest (:func:`for_device`).
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth import secrets
from edgefleet.server.data.objects import ObjectStore, ObjectStoreError
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Invalid, NotFound, PayloadTooLarge, Unauthorized
from edgefleet.server.jobs.tables import Job, JobDevice

CONTEXT_KEY = "x-edgefleet-build-context"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


def object_key(project_pk: int, digest: str) -> str:
    return f"build-contexts/p{project_pk}/{digest.removeprefix('sha256:')}.tar"


async def receive(chunks: AsyncIterator[bytes], max_bytes: int, into: Path) -> str:
    """Write the body to ``into``, counting it against the limit; its digest."""
    digest, size = hashlib.sha256(), 0
    with into.open("wb") as out:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"the build context is larger than {max_bytes} bytes "
                    "(--build-context-max-bytes); leave build outputs and caches out of it"
                )
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise Invalid("the build context is empty: send a tar of the directory", field="context")
    return f"sha256:{digest.hexdigest()}"


def _unsafe(member: tarfile.TarInfo) -> str | None:
    """Why an entry cannot be in a context, or None."""
    name = member.name
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal == ".." or normal.startswith("../"):
        return "its path leaves the context"
    if member.isdev() or member.isfifo():
        return "devices and FIFOs are not allowed in a build context"
    if member.issym() or member.islnk():
        link = member.linkname
        base = posixpath.dirname(normal) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, link))
        if link.startswith("/") or target == ".." or target.startswith("../"):
            return f"it links to {link!r}, outside the context"
    elif not (member.isfile() or member.isdir()):
        return "only files, directories and links inside the context are allowed"
    return None


def check(path: Path) -> None:
    """Refuse a file that is not a tar, or an entry that could reach outside it."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                reason = _unsafe(member)
                if reason is not None:
                    raise Invalid(
                        f"build context entry {member.name!r} refused: {reason}",
                        field="context",
                        entry=member.name,
                    )
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise Invalid(f"the build context is not a readable tar: {exc}", field="context") from exc


async def store_upload(
    store: ObjectStore, project_pk: int, chunks: AsyncIterator[bytes], max_bytes: int
) -> tuple[str, int]:
    """Receive, check and store one context; its digest and size."""
    with tempfile.TemporaryDirectory(prefix="ef-context-") as tmp:
        path = Path(tmp) / "context.tar"
        digest = await receive(chunks, max_bytes, path)
        check(path)
        size = path.stat().st_size
        try:
            await store.put(object_key(project_pk, digest), path)
        except ObjectStoreError as exc:
            raise Invalid(f"the build context could not be stored: {exc.message}") from exc
    return digest, size


async def require(store: ObjectStore, project_pk: int, digest: str) -> None:
    """The version may name only a context uploaded to its own project."""
    try:
        async for _ in store.read(object_key(project_pk, digest)):
            return
    except ObjectStoreError as exc:
        raise Invalid(
            f"no build context {digest} was uploaded to this project; "
            "upload it first (POST /build-contexts)",
            field="context",
        ) from exc


async def for_device(
    db: AsyncSession, store: ObjectStore, credential: str | None, job_id: str, digest: str
) -> AsyncIterator[bytes]:
    """The context's bytes, for a device assigned to ``job_id`` whose spec names it."""
    device = await db.scalar(
        select(Device.pk).where(Device.credential_hash == secrets.digest(credential or ""))
    )
    if not credential or device is None:
        raise Unauthorized("build contexts are fetched with a device credential")
    job = await db.scalar(
        select(Job)
        .join(JobDevice, JobDevice.job_pk == Job.pk)
        .where(Job.id == job_id, JobDevice.device_pk == device, JobDevice.assigned.is_(True))
    )
    named = job is not None and any(
        ((s or {}).get("build") or {}).get("digest") == digest
        for s in ((job.resolved or {}).get("services") or {}).values()
    )
    if job is None or not named:
        raise NotFound(f"no build context {digest} for this device in job {job_id}")
    return store.read(object_key(job.project_pk, digest))
