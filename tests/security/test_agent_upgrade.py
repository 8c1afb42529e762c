"""Attacks on over-the-air agent upgrades (issue 18): who may upload releases,
how big, under which names; who may upgrade which devices; and the device's own
refusal of a wheel that is not what the server announced."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from edgefleet.agent.upgrade import install
from edgefleet.agent.upgrade.state import Paths
from edgefleet.wire.upgrade import UpgradeOrder
from tests.conftest import Fleet
from tests.security.conftest import OUTSIDER, Estate, P

WHEEL = b"PK\x03\x04" + b"not really a wheel, but shaped like one" * 50
SHA = hashlib.sha256(WHEEL).hexdigest()


def _upload(http: httpx.Client, version: str, body: bytes, sha: str) -> httpx.Response:
    return http.post(
        "/api/v1/agent-releases",
        params={"version": version, "sha256": sha},
        content=body,
        headers={"Content-Type": "application/octet-stream"},
    )


def _versions(estate: Estate) -> list[str]:
    with estate.http() as admin:
        return [r["version"] for r in admin.get("/api/v1/agent-releases").json()["items"]]


@pytest.mark.parametrize("who", ["operator", "owner", OUTSIDER])
def test_only_admins_upload_releases(estate: Estate, who: str) -> None:
    with estate.http(who) as http:
        answer = _upload(http, "6.6.6", WHEEL, SHA)
    assert answer.status_code == 403, answer.text
    assert "administrators" in answer.text
    assert "6.6.6" not in _versions(estate)


@pytest.mark.parametrize(
    "version", ["../../etc/cron.d/x", "..", "a/b", "a\\b", ".hidden", "x" * 65, "1.0/../../.."]
)
def test_path_traversal_in_versions_is_refused(estate: Estate, version: str) -> None:
    with estate.http() as admin:
        answer = _upload(admin, version, WHEEL, SHA)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == "version"
    assert version not in _versions(estate)
    with pytest.raises(ValidationError):
        UpgradeOrder(version=version, sha256=SHA, url="/x", size=1)
    with pytest.raises(ValueError):
        Paths(Path("/tmp/never")).version_dir(version)


def test_device_download_of_a_traversing_version_is_refused(estate: Estate) -> None:
    credential = json.loads((estate.agent.state_dir / "device.json").read_text())["credential"]
    with estate.http(None, token=credential) as device:
        answer = device.get("/api/v1/agent-releases/..%2F..%2Fetc/wheel")
        assert answer.status_code in (404, 422), answer.text
    with estate.http("admin") as admin:  # a user token is not a device credential
        assert admin.get("/api/v1/agent-releases/9.9.9/wheel").status_code == 401


def test_upgrade_of_another_projects_devices_is_404(estate: Estate) -> None:
    with estate.http(OUTSIDER) as outsider:
        by_id = outsider.post(
            "/api/v1/devices/upgrade-agent", json={"version": "9.9.9", "devices": [estate.device]}
        )
        assert by_id.status_code == 404, by_id.text
        by_selector = outsider.post(
            "/api/v1/devices/upgrade-agent",
            json={"version": "9.9.9", "selector": {}, "project": P},
        )
        assert by_selector.status_code == 404, by_selector.text
        assert outsider.get("/api/v1/agent-upgrades").json()["items"] == []


def test_oversized_and_mismatched_uploads_are_refused(fleet: Fleet) -> None:
    server = fleet.start_server(extra_args=["--agent-release-max-bytes", "4096"])
    big = WHEEL + b"x" * 8192
    with server.http() as admin:
        declared = _upload(admin, "7.0.0", big, hashlib.sha256(big).hexdigest())
        assert declared.status_code == 413, declared.text

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            for _ in range(10):
                yield big[:1024]

        streamed = admin.post(
            "/api/v1/agent-releases",
            params={"version": "7.0.1", "sha256": SHA},
            content=chunks(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert streamed.status_code == 413, streamed.text
        wrong = _upload(admin, "7.0.2", WHEEL[:1000], SHA)
        assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "sha256"
        not_zip = b"#!/bin/sh\nrm -rf /\n"
        shell = _upload(admin, "7.0.3", not_zip, hashlib.sha256(not_zip).hexdigest())
        assert shell.status_code == 422, shell.text
        form = admin.post(
            "/api/v1/agent-releases",
            data={"version": "7.0.4", "sha256": hashlib.sha256(big).hexdigest()},
            files={"file": ("edgefleet-7.0.4-py3-none-any.whl", big)},
        )
        assert form.status_code == 413, form.text  # a multipart form is held to the limit too
        assert admin.get("/api/v1/agent-releases").json()["items"] == []
        # The same form with a wheel that fits is taken.
        fits = admin.post(
            "/api/v1/agent-releases",
            data={"version": "7.0.5", "sha256": SHA},
            files={"file": ("edgefleet-7.0.5-py3-none-any.whl", WHEEL)},
        )
        assert fits.status_code == 201 and fits.json()["sha256"] == SHA, fits.text


@pytest.fixture
def wheel_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server standing in for a compromised or broken release store:
    it serves WHEEL at any path and records the Authorization headers it saw."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.send_header("Content-Length", str(len(WHEEL)))
            self.end_headers()
            self.wfile.write(WHEEL)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def test_agent_refuses_a_wheel_whose_sha256_does_not_match(
    wheel_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, seen = wheel_server
    order = UpgradeOrder(version="8.0.0", sha256="ab" * 32, url="/w.whl", size=len(WHEEL))
    with pytest.raises(install.InstallError, match="SHA-256 mismatch"):
        install.download(url, "cred-1", order, tmp_path / "dl", 1 << 20, None)
    assert seen == ["Bearer cred-1"]  # fetched with the device credential
    assert list((tmp_path / "dl").iterdir()) == [], "the refused wheel was kept"
    assert not (tmp_path / "versions").exists()
    # More bytes than announced: cut off, not installed.
    short = UpgradeOrder(version="8.0.1", sha256=SHA, url="/w.whl", size=100)
    with pytest.raises(install.InstallError, match="more than the announced"):
        install.download(url, "cred-1", short, tmp_path / "dl", 1 << 20, None)
    # Over the device's own limit: not even fetched.
    with pytest.raises(install.InstallError, match="upgrade-max-bytes"):
        install.download(url, "cred-1", order, tmp_path / "dl", 10, None)
    # Only a path on the agent's own server, never another host.
    elsewhere = order.model_copy(update={"url": "@evil.example/w.whl"})
    with pytest.raises(install.InstallError, match="path on this agent's server"):
        install.download(url, "cred-1", elsewhere, tmp_path / "dl", 1 << 20, None)
    assert len(seen) == 2
