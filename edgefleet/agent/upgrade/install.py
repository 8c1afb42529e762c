"""Fetch, verify and install a release beside the running agent.

The wheel comes from the server over plain HTTPS with the device's own
credential (``Authorization: Bearer``), at most ``size`` bytes (what the
server announced) and never more than the agent's ``--upgrade-max-bytes``;
its SHA-256 must match the order before anything is unpacked.

Installing: ``versions/<V>/`` is a venv (``python -m venv --without-pip``)
whose ``site-packages`` gets the wheel, installed by the running agent's pip
(``pip --python versions/<V>/bin/python install --no-deps --no-index``), and a
``.pth`` file that adds the running agent's own dependency directories after
it. A release therefore shares the dependencies already on the device and
needs no package index: devices often have none. A release that needs a new
dependency must be installed by hand (or by a base image) first; the new
agent then fails to start, and the watchdog rolls back with that in the reason.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from edgefleet.agent.upgrade.state import Paths
from edgefleet.wire.upgrade import UpgradeOrder

if TYPE_CHECKING:  # ssl loads only for an https server (agent/footprint.py)
    import ssl

CHUNK = 1 << 16


class InstallError(Exception):
    """The release could not be fetched, verified or installed; nothing switched."""


def download(
    server: str,
    credential: str,
    order: UpgradeOrder,
    into: Path,
    max_bytes: int,
    context: ssl.SSLContext | None,
) -> Path:
    """The wheel at ``into/<name>``, its SHA-256 checked; raises InstallError."""
    if order.size > max_bytes:
        raise InstallError(
            f"the release is {order.size} bytes, over --upgrade-max-bytes {max_bytes}"
        )
    if not order.url.startswith("/"):
        raise InstallError("the release URL must be a path on this agent's server")
    into.mkdir(parents=True, exist_ok=True)
    target = into / f"edgefleet-{order.version}-py3-none-any.whl"
    request = urllib.request.Request(
        server.rstrip("/") + order.url, headers={"Authorization": f"Bearer {credential}"}
    )
    digest = hashlib.sha256()
    total = 0
    try:
        with (
            urllib.request.urlopen(request, timeout=60, context=context) as response,
            target.open("wb") as out,
        ):
            while chunk := response.read(CHUNK):
                total += len(chunk)
                if total > order.size:
                    raise InstallError(
                        f"the server sent more than the announced {order.size} bytes"
                    )
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        target.unlink(missing_ok=True)
        raise InstallError(f"download of {order.version} failed: {exc}") from exc
    except InstallError:
        target.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != order.sha256:
        target.unlink(missing_ok=True)
        raise InstallError(
            f"SHA-256 mismatch for {order.version}: expected {order.sha256}, "
            f"got {digest.hexdigest()}; nothing installed"
        )
    return target


def dependency_dirs() -> list[str]:
    """Where the running agent's dependencies live (its venv and the system's)."""
    return [
        p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()
    ]


def install(paths: Paths, version: str, wheel: Path) -> Path:
    """A venv at ``versions/<version>`` with the wheel; returns its python."""
    venv = paths.version_dir(version)
    if venv.exists():
        shutil.rmtree(venv)  # a half install from an earlier try
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "creating the venv")
    python = paths.python_of(venv)
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            "locating site-packages",
        ).strip()
    )
    (site / "edgefleet-dependencies.pth").write_text("\n".join(dependency_dirs()) + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-warn-script-location",
            str(wheel),
        ],
        "installing the wheel",
    )
    return python


def _run(argv: list[str], what: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InstallError(f"{what} failed: {' '.join(tail) or done.returncode}")
    return done.stdout
