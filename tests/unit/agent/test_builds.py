"""The device's side of image builds (issue 21): the tag, and the repacked
context that the engine sees: only the build's directory, nothing escaping."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from edgefleet.agent.builds import build_tag, repack
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.spec.model import Build


def _tar(path: Path, *entries: tuple[str, bytes, str]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, kind, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            data = b"data" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def test_tag_is_a_valid_reference() -> None:
    tag = build_tag("My_App", "1.0+rc", "sha256:" + "ab" * 32)
    assert tag == "localhost/ef-build/my_app:1.0-rc-abababababab"


def test_repack_keeps_only_the_context_directory(tmp_path: Path) -> None:
    source = _tar(
        tmp_path / "in.tar",
        ("./src/Containerfile", tarfile.REGTYPE, ""),
        ("./src/sub/f", tarfile.REGTYPE, ""),
        ("./src/link", tarfile.SYMTYPE, "sub/f"),
        ("./other/secret", tarfile.REGTYPE, ""),
    )
    repack(source, Build(context="src"), tmp_path / "out.tar")
    with tarfile.open(tmp_path / "out.tar") as tar:
        assert sorted(tar.getnames()) == ["Containerfile", "link", "sub/f"]


@pytest.mark.parametrize(
    "entry",
    [
        ("../x", tarfile.REGTYPE, ""),
        ("/etc/passwd", tarfile.REGTYPE, ""),
        ("l", tarfile.SYMTYPE, "/etc/shadow"),
        ("d/l", tarfile.SYMTYPE, "../../x"),
        ("dev", tarfile.CHRTYPE, ""),
    ],
)
def test_repack_refuses_entries_that_escape(tmp_path: Path, entry: tuple[str, bytes, str]) -> None:
    source = _tar(tmp_path / "in.tar", ("Containerfile", tarfile.REGTYPE, ""), entry)
    with pytest.raises(RuntimeFailure):
        repack(source, Build(), tmp_path / "out.tar")


def test_repack_of_a_missing_directory_says_so(tmp_path: Path) -> None:
    source = _tar(tmp_path / "in.tar", ("Containerfile", tarfile.REGTYPE, ""))
    with pytest.raises(RuntimeFailure, match="nothing under 'nope'"):
        repack(source, Build(context="nope"), tmp_path / "out.tar")
