"""Attacks on personal instances (issue 21): another project's developer
launching, reading, sharing or stopping someone's instance (404), a project
member who is not the owner opening it through the proxy or port-forward
(404 until it is shared), sharing to a user outside the project (422 naming
``user``), and an idle instance stopped after its application's timeout.

A real server and a real agent with the process runtime (cheap; the Podman
flavour with two users' containers is tests/e2e/test_instances_podman.py)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.instance_lab import developers, online_device, web_tool
from tests.support.procs import free_port, wait_for

PASSWORD = "correct-horse-battery"


@pytest.fixture
def lab(fleet: Fleet) -> dict[str, Any]:
    server, device = online_device(fleet)
    with server.client() as admin:
        members = {"alice": "default", "bob": "default", "mallory": "other"}
        tokens = developers(admin, members, password=PASSWORD)
        port = free_port()
        admin.create_application("tool", "1", compose=web_tool(port))
        admin.set_launchable("tool", idle_timeout=600)
    return {"server": server, "device": device, "tokens": tokens, "port": port}


def _running(server: Any, token: str, instance: str) -> bool:
    with server.client(token) as client:
        return bool(client.instance(instance)["state"] == "running")


def test_only_owner_and_shared_users_reach_an_instance(lab: dict[str, Any]) -> None:
    server, tokens, device = lab["server"], lab["tokens"], lab["device"]
    alice, bob, mallory = (server.http(tokens[n]) for n in ("alice", "bob", "mallory"))
    with alice, bob, mallory, server.http() as admin:
        elsewhere = alice.post("/api/v1/instances", json={"app": "tool", "device": "nope"})
        assert elsewhere.status_code == 422 and elsewhere.json()["error"]["field"] == "device"
        made = alice.post("/api/v1/instances", json={"app": "tool", "device": device})
        assert made.status_code == 201, made.text
        inst = made.json()
        assert inst["owner"] == "alice" and inst["shared_with"] == []
        wait_for(lambda: _running(server, tokens["alice"], inst["id"]), 60, what="instance up")
        url = inst["urls"][0]
        assert url == f"/proxy/{inst['job']}/{device}/web/{lab['port']}/"
        wait_for(lambda: alice.get(url).status_code == 200, 30, what="owner gets through")

        # another developer of the same project, and the project's admin: not theirs
        assert bob.get(url).status_code == 404
        assert admin.get(url).status_code == 404
        assert bob.get(f"/api/v1/instances/{inst['id']}").status_code == 404
        assert bob.get("/api/v1/instances").json()["items"] == []
        # ... nor through a job port-forward, which would bypass the proxy
        query = f"device={device}&service=web&port={lab['port']}&check=true"
        ws = server.url.replace("http://", "ws://") + f"/api/v1/jobs/{inst['job']}/forward/ws"
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {tokens['bob']}"}
        with (
            connect(f"{ws}?{query}", additional_headers=headers) as conn,
            pytest.raises(ConnectionClosed) as closed,
        ):
            conn.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404  # 404

        # another project's developer: nothing exists, whatever they try
        for method, path, body in (
            ("GET", f"/api/v1/instances/{inst['id']}", None),
            ("POST", f"/api/v1/instances/{inst['id']}/share", {"user": "mallory"}),
            ("POST", f"/api/v1/instances/{inst['id']}/stop", None),
            ("POST", "/api/v1/instances", {"app": "tool"}),
            ("GET", url, None),
        ):
            answer = mallory.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
        # a member who is not the owner may not share or stop it either
        assert (
            bob.post(f"/api/v1/instances/{inst['id']}/share", json={"user": "bob"}).status_code
            == 404
        )
        assert bob.post(f"/api/v1/instances/{inst['id']}/stop").status_code == 404

        # sharing to someone outside the project is refused, naming the field
        outside = alice.post(f"/api/v1/instances/{inst['id']}/share", json={"user": "mallory"})
        assert outside.status_code == 422, outside.text
        assert outside.json()["error"]["field"] == "user", outside.text
        assert mallory.get(url).status_code == 404

        shared = alice.post(f"/api/v1/instances/{inst['id']}/share", json={"user": "bob"})
        assert shared.status_code == 200 and shared.json()["shared_with"] == ["bob"]
        assert bob.get(url).status_code == 200
        assert [i["id"] for i in bob.get("/api/v1/instances").json()["items"]] == [inst["id"]]
        # and taken back
        assert alice.delete(f"/api/v1/instances/{inst['id']}/share/bob").status_code == 200
        assert bob.get(url).status_code == 404

        stopped = alice.post(f"/api/v1/instances/{inst['id']}/stop")
        assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None, page[:500]
    return match.group(1)


def _launch_in_portal(url: str, token: str) -> dict[str, Any]:
    """Alice signs in and presses Launch on the application's page; her
    "My instances" page then lists the instance."""
    with httpx.Client(base_url=url, timeout=30) as browser:
        form = {"csrf": _csrf(browser.get("/login").text), "username": "alice"}
        signed = browser.post("/login", data={**form, "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        page = browser.get("/apps/tool").text
        assert 'action="/instances/launch"' in page and ">Launch</button>" in page
        launched = browser.post("/instances/launch", data={"csrf": _csrf(page), "app": "tool"})
        assert launched.status_code == 303 and launched.headers["location"] == "/instances"
        mine = browser.get("/instances").text
        assert "tool 1" in mine and "Launch tool" in mine
    with httpx.Client(base_url=url, timeout=30) as api:
        headers = {"Authorization": f"Bearer {token}"}
        items = api.get("/api/v1/instances", headers=headers).json()["items"]
    assert len(items) == 1 and items[0]["id"] in mine
    return dict(items[0])


def test_not_launchable_refused_and_idle_instance_stops(lab: dict[str, Any]) -> None:
    server, tokens = lab["server"], lab["tokens"]
    with server.client() as admin:
        admin.create_application("plain", "1", compose=web_tool(free_port()))
        admin.set_launchable("tool", idle_timeout=10)
    with server.http(tokens["alice"]) as alice:
        refused = alice.post("/api/v1/instances", json={"app": "plain"})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "app"
        too_short = alice.put("/api/v1/applications/tool/launchable", json={"idle_timeout": 1})
        assert too_short.status_code == 422 and "idle_timeout" in too_short.text
        inst = _launch_in_portal(server.url, tokens["alice"])
        assert inst["idle_timeout"] == 10

        def stopped() -> dict[str, Any] | None:
            seen = alice.get(f"/api/v1/instances/{inst['id']}").json()
            return seen if seen["state"] == "stopped" else None

        seen = wait_for(stopped, 40, what="idle instance stopped")
        assert seen["stopped_reason"].startswith("idle"), seen
        assert seen["urls"] == []
        with httpx.Client(base_url=server.url, timeout=10) as anyone:
            job = anyone.get(
                f"/api/v1/jobs/{inst['job']}",
                headers={"Authorization": f"Bearer {tokens['alice']}"},
            ).json()
        assert job["state"] == "cancelled"
