"""Images built on the device from the version's build context (Compose ``build:``).

For a service with ``build:`` the Prepare step does this instead of a pull::

    fetch  GET /api/v1/agent/build-contexts/<job>/<digest>   (device credential;
           the server answers only devices assigned to that job)
    check  sha256 of the bytes == digest; at most --build-context-max-bytes
    repack the build's context directory into a plain tar, refusing any entry
           that leaves it (absolute, .., outside links, devices)
    build  with this device's engine (:class:`~edgefleet.agent.runtimes.capabilities.CanBuild`), tagged
           localhost/ef-build/<app>:<version>-<digest>, so it is the device's
           own architecture and needs no registry

A failure anywhere is a :class:`~edgefleet.agent.errors.RuntimeFailure`,
reported like a failed pull: the job's device state is failed with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgefleet.agent.enroll import http_base
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.runtimes.base import Runtime, WorkloadSpec
from edgefleet.agent.runtimes.capabilities import CanBuild
from edgefleet.spec.model import Build

if TYPE_CHECKING:  # ssl loads only for an https server (agent/footprint.py)
    import ssl

CHUNK = 1 << 16
Progress = Callable[[str], None]  # "building: STEP 2/4: COPY …"
_TAG_CHARS = re.compile(r"[^a-z0-9_.-]+")


def build_tag(application: str, version: str, digest: str) -> str:
    """``localhost/ef-build/<app>:<version>-<digest>``, in the characters a tag allows."""
    repository = _TAG_CHARS.sub("-", application.lower()).strip("-.") or "app"
    tag = _TAG_CHARS.sub("-", f"{version}-{digest.removeprefix('sha256:')[:12]}".lower())
    return f"localhost/ef-build/{repository}:{tag[:128]}"


def fetch(
    server: str,
    credential: str,
    job_id: str,
    digest: str,
    into: Path,
    max_bytes: int,
    context: ssl.SSLContext | None,
) -> None:
    """Download the context to ``into`` and check its digest."""
    url = f"{http_base(server).rstrip('/')}/api/v1/agent/build-contexts/{job_id}/{digest}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {credential}"})
    sha, total = hashlib.sha256(), 0
    try:
        with (
            urllib.request.urlopen(request, timeout=60, context=context) as response,
            into.open("wb") as out,
        ):
            while chunk := response.read(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise RuntimeFailure(
                        f"the build context is over --build-context-max-bytes {max_bytes}"
                    )
                sha.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeFailure(f"cannot fetch the build context from the server: {exc}") from exc
    if f"sha256:{sha.hexdigest()}" != digest:
        raise RuntimeFailure(f"the build context fetched does not match {digest}")


def _inside(name: str) -> str | None:
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal == ".." or normal.startswith("../"):
        return None
    return normal


def repack(source: Path, build: Build, dest: Path) -> None:
    """The entries under ``build.context`` as a plain tar rooted there."""
    import tarfile  # with the first build, not in every idle agent (executor imports this)

    prefix = "" if build.context in (".", "") else build.context.rstrip("/") + "/"
    count = 0
    try:
        with tarfile.open(source, "r:*") as src, tarfile.open(dest, "w") as out:
            for member in src:
                name = _inside(member.name)
                if name is None or member.isdev() or member.isfifo():
                    raise RuntimeFailure(f"build context entry {member.name!r} is not allowed")
                if prefix and not (name + "/").startswith(prefix):
                    continue
                relative = name[len(prefix) :] if prefix else name
                if not relative or relative == ".":
                    continue
                if member.issym():
                    if (
                        _inside(posixpath.join(posixpath.dirname(relative), member.linkname))
                        is None
                    ):
                        raise RuntimeFailure(
                            f"build context entry {member.name!r} links outside the context"
                        )
                elif member.islnk():  # a hard link names a path from the tar's root
                    target = _inside(member.linkname)
                    if target is None or not (target + "/").startswith(prefix):
                        raise RuntimeFailure(
                            f"build context entry {member.name!r} links outside the context"
                        )
                    member.linkname = target[len(prefix) :]
                member.name = relative
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
                count += 1
    except tarfile.TarError as exc:
        raise RuntimeFailure(f"the build context is not a readable tar: {exc}") from exc
    if count == 0:
        raise RuntimeFailure(f"the build context has nothing under {build.context!r}")


class Builds:
    """Fetch, check, repack and build; set on the executor by the parts table
    (:mod:`edgefleet.agent.parts`)."""

    def __init__(
        self,
        server: Callable[[], str],
        credential: str,
        max_bytes: int,
        context: ssl.SSLContext | None,
    ) -> None:
        self.server = server
        self.credential = credential
        self.max_bytes = max_bytes
        self.context = context

    async def build(self, spec: WorkloadSpec, runtime: Runtime, progress: Progress) -> None:
        build = spec.service.build
        assert build is not None
        if not isinstance(runtime, CanBuild):
            raise RuntimeFailure(
                f"service {spec.service_name}: the {runtime.name} runtime "
                "cannot build images (build: needs a container engine)"
            )
        if not build.digest:
            raise RuntimeFailure(
                f"service {spec.service_name}: build: without a build context from the server"
            )
        with tempfile.TemporaryDirectory(prefix="ef-build-") as tmp:
            fetched, plain = Path(tmp) / "upload.tar", Path(tmp) / "context.tar"
            await asyncio.to_thread(
                fetch,
                self.server(),
                self.credential,
                spec.job_id,
                build.digest,
                fetched,
                self.max_bytes,
                self.context,
            )
            await asyncio.to_thread(repack, fetched, build, plain)
            await runtime.build(spec, plain, progress)
