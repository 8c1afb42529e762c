"""Secret files are written only to a tmpfs, opened from their sealed copies,
and a secret that was not delivered fails in words, not with a traceback."""

from __future__ import annotations

import base64
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.workload_files import (
    MARKER,
    WorkloadFiles,
    filesystem_of,
    forget,
    rehydrate,
)
from edgefleet.spec.model import AppSpec, FileRef, FileSource, Service
from edgefleet.wire.sealed import associated_data, seal
from edgefleet.wire.workload import JobAssignment, SealedSecret

SHM = Path("/dev/shm")


def _keys() -> tuple[str, str]:
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode(), base64.b64encode(pub).decode()


def _assignment(public: str, *, deliver: bool = True) -> JobAssignment:
    spec = AppSpec(
        services={
            "s": Service(
                image="x",
                secrets=[FileRef(source="pw", target="/run/secrets/pw", mode=0o400, version=2)],
                configs=[FileRef(source="c", target="/etc/app.conf", content="k=v\n")],
            )
        },
        secrets={"pw": FileSource(external=True, name="pw")},
        configs={"c": FileSource(content="k=v\n")},
    )
    sealed = {
        "pw": SealedSecret(
            version=2, sealed=seal(public, b"hunter2", associated_data("d1", "j1", "pw", 2))
        )
    }
    return JobAssignment(
        job_id="j1",
        project_id="p",
        application="a",
        version="1",
        spec=spec,
        secrets=sealed if deliver else {},
    )


@pytest.fixture
def shm_dir(tmp_path: Path) -> Iterator[Path]:
    assert filesystem_of(SHM) == "tmpfs", "the test needs /dev/shm on a tmpfs"
    where = SHM / f"edgefleet-test-{tmp_path.name}"
    yield where
    shutil.rmtree(where, ignore_errors=True)


def test_files_are_written_on_a_tmpfs_and_forgotten(shm_dir: Path, tmp_path: Path) -> None:
    private, public = _keys()
    files = WorkloadFiles(private, "d1", shm_dir, tmp_path / "state")(
        _assignment(public), "r1", "s"
    )
    try:
        by_target = {f.target: f.host_path for f in files}
        assert by_target["/run/secrets/pw"].read_bytes() == b"hunter2"
        assert stat.S_IMODE(by_target["/run/secrets/pw"].stat().st_mode) == 0o400
        assert by_target["/etc/app.conf"].read_text() == "k=v\n"
        assert stat.S_IMODE(shm_dir.stat().st_mode) == 0o700
        assert (by_target["/etc/app.conf"].parent / MARKER).exists()
    finally:
        forget(str(f.host_path) for f in files)
    assert not any(f.host_path.exists() for f in files)


def test_a_directory_on_disk_or_in_the_state_dir_is_refused(tmp_path: Path) -> None:
    private, public = _keys()
    if filesystem_of(tmp_path) not in ("tmpfs", "ramfs"):
        with pytest.raises(RuntimeFailure, match="not a tmpfs"):
            WorkloadFiles(private, "d1", tmp_path / "f", tmp_path / "state")(
                _assignment(public), "r1", "s"
            )
    with pytest.raises(RuntimeFailure, match="inside the state dir"):
        WorkloadFiles(private, "d1", tmp_path / "state" / "f", tmp_path / "state")(
            _assignment(public), "r1", "s"
        )


def test_an_undelivered_or_foreign_secret_fails_in_words(shm_dir: Path, tmp_path: Path) -> None:
    private, public = _keys()
    other, _ = _keys()
    hook = WorkloadFiles(private, "d1", shm_dir, tmp_path / "state")
    with pytest.raises(RuntimeFailure, match="not delivered"):
        hook(_assignment(public, deliver=False), "r1", "s")
    with pytest.raises(RuntimeFailure, match="does not open") as caught:
        WorkloadFiles(other, "d1", shm_dir, tmp_path / "state")(_assignment(public), "r1", "s")
    assert "hunter2" not in str(caught.value)
    assert list(shm_dir.iterdir()) == []  # a failed workload leaves no files behind


def test_after_a_reboot_the_files_are_written_again_from_desired_state(
    shm_dir: Path, tmp_path: Path
) -> None:
    from edgefleet.agent.changes.plan import revision_of

    private, public = _keys()
    hook = WorkloadFiles(private, "d1", shm_dir, tmp_path / "state")
    ok, undelivered = _assignment(public), _assignment(public, deliver=False)
    undelivered.job_id = "j2"
    rehydrate(hook, [ok, undelivered])  # the undelivered one is reported later, not raised
    (written,) = [p for p in shm_dir.iterdir()]
    assert revision_of(ok) in written.name
    assert sorted(p.read_bytes() for p in written.iterdir() if p.name != MARKER) == [
        b"hunter2",
        b"k=v\n",
    ]
