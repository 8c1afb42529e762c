"""Attacks on build contexts (issue 21, images built on the device): oversized
and hostile tars, build: without a context, a context of another project, and
a device fetching a context outside its jobs."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator

import httpx
import pytest

from edgefleet.spec.keys import REFUSED_SERVICE_KEYS
from tests.security.conftest import OUTSIDER, Estate, P, Q

BUILD = "services:\n  web:\n    build: .\n    command: [sleep, '3600']\n"


def _tar(*members: tarfile.TarInfo, data: bytes = b"FROM scratch\n") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Containerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return buffer.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


def _upload(http: httpx.Client, body: bytes | Iterator[bytes], project: str = P) -> httpx.Response:
    return http.post(
        "/api/v1/build-contexts",
        params={"project": project},
        content=body,
        headers={"Content-Type": "application/x-tar"},
    )


def _credential(estate: Estate) -> str:
    identity = json.loads((estate.agent.state_dir / "device.json").read_text())
    return str(identity["credential"])


def test_oversized_context_is_refused_with_413(estate: Estate) -> None:
    def body() -> Iterator[bytes]:  # streamed: no Content-Length to refuse up front
        chunk = b"\0" * (1 << 20)
        for _ in range(65):
            yield chunk

    with estate.http("developer") as http:
        answer = _upload(http, body())
    assert answer.status_code == 413, answer.text
    assert "build-context-max-bytes" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        (_entry("../escape"), "leaves the context"),
        (_entry("/etc/passwd"), "leaves the context"),
        (_entry("a/../../b"), "leaves the context"),
        (_entry("evil", tarfile.SYMTYPE, "/etc/shadow"), "outside the context"),
        (_entry("sub/evil", tarfile.SYMTYPE, "../../x"), "outside the context"),
        (_entry("hard", tarfile.LNKTYPE, "../x"), "outside the context"),
        (_entry("dev", tarfile.CHRTYPE), "devices"),
        (_entry("fifo", tarfile.FIFOTYPE), "FIFOs"),
    ],
)
def test_hostile_entries_are_refused_naming_them(
    estate: Estate, entry: tarfile.TarInfo, why: str
) -> None:
    with estate.http("developer") as http:
        answer = _upload(http, _tar(entry))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == "context"
    assert repr(entry.name) in error["message"] and why in error["message"]


def test_a_safe_inner_link_is_accepted(estate: Estate) -> None:
    with estate.http("developer") as http:
        answer = _upload(http, _tar(_entry("sub/ok", tarfile.SYMTYPE, "../Containerfile")))
    assert answer.status_code == 201, answer.text
    assert answer.json()["context"].startswith("sha256:")


def test_not_a_tar_and_viewers_are_refused(estate: Estate) -> None:
    with estate.http("developer") as http:
        answer = _upload(http, b"just some text, not a tar archive" * 30)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "context"
    with estate.http("viewer") as http:
        assert _upload(http, _tar()).status_code == 403


def test_build_without_a_context_keeps_todays_refusal(estate: Estate) -> None:
    with estate.http("developer") as http:
        answer = http.post(
            "/api/v1/applications",
            json={"project": P, "name": "no-context", "version": "1", "compose": BUILD},
        )
    assert answer.status_code == 422, answer.text
    assert REFUSED_SERVICE_KEYS["build"] in answer.json()["error"]["message"]


def test_another_projects_context_cannot_be_named_or_fetched(estate: Estate) -> None:
    with estate.http(OUTSIDER) as outsider:  # owner of Q
        theirs = _upload(outsider, _tar(data=b"FROM scratch\nLABEL q=1\n"), project=Q)
        assert theirs.status_code == 201, theirs.text
        digest = theirs.json()["context"]
        made = outsider.post(
            "/api/v1/applications",
            json={
                "project": Q,
                "name": "q-built",
                "version": "1",
                "compose": BUILD,
                "context": digest,
            },
        )
        assert made.status_code == 201, made.text
        # and P's developer cannot upload into Q at all
    with estate.http("developer") as http:
        assert _upload(http, _tar(), project=Q).status_code == 404
        stolen = http.post(
            "/api/v1/applications",
            json={
                "project": P,
                "name": "stolen",
                "version": "1",
                "compose": BUILD,
                "context": digest,
            },
        )
    assert stolen.status_code == 422, stolen.text
    assert stolen.json()["error"]["field"] == "context"
    # P's device asks for Q's context through its own job: not its job's context
    path = f"/api/v1/agent/build-contexts/{estate.job}/{digest}"
    with estate.http(None, token=_credential(estate)) as device:
        answer = device.get(path)
    assert answer.status_code == 404, answer.text
    assert b"LABEL" not in answer.content
    with estate.http("admin") as admin:  # a user token is not a device credential
        assert admin.get(path).status_code == 401
