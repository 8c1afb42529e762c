"""Attacks on saving an instance (issue 21 part D), against a real server and a
real agent (process runtime: every refusal here comes before the device is
asked, except the last, which the device itself refuses).

- another project's developer: 404 (they cannot know the instance exists);
- a member of the project it is not shared with: 404, like every other
  instance route (``find`` hides it);
- a member it IS shared with: 403 — they can already see it, so a 404 would
  be a lie; sharing lets them open it, not publish it under the project;
- a viewer who owns an instance (demoted after launch): 403 (developer role);
- ``as`` naming another project's app (by id): 422 naming ``as``, nothing recorded;
- malformed APP:VERSION: 422 naming ``as``; unknown service: 422 naming ``service``;
- an existing version: 409; no registry in the project: 422 naming ``registry``;
- a device without a container engine refuses the save: 503, nothing recorded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.instance_lab import developers, online_device, web_tool
from tests.support.procs import free_port, wait_for


@pytest.fixture
def lab(fleet: Fleet) -> dict[str, Any]:
    server, device = online_device(fleet)
    with server.client() as admin:
        members = {"alice": "default", "bob": "default", "carol": "default", "mallory": "other"}
        tokens = developers(admin, members)
        admin.create_application("tool", "1", compose=web_tool(free_port()))
        admin.set_launchable("tool", idle_timeout=600)
        foreign = admin.create_application(
            "theirs", "1", compose=web_tool(free_port()), project="other"
        )
    return {"server": server, "device": device, "tokens": tokens, "foreign": foreign["id"]}


def test_save_refusals(lab: dict[str, Any]) -> None:
    server, tokens = lab["server"], lab["tokens"]
    alice, bob, carol, mallory = (
        server.http(tokens[n]) for n in ("alice", "bob", "carol", "mallory")
    )
    with alice, bob, carol, mallory, server.http() as admin:
        made = alice.post("/api/v1/instances", json={"app": "tool", "device": lab["device"]})
        assert made.status_code == 201, made.text
        inst = made.json()["id"]
        assert alice.post(f"/api/v1/instances/{inst}/share", json={"user": "carol"}).is_success
        save = f"/api/v1/instances/{inst}/save"
        good = {"service": "web", "as": "tool:2"}

        def refused(who: Any, body: dict[str, Any], status: int, field: str | None) -> None:
            answer = who.post(save, json=body)
            assert answer.status_code == status, answer.text
            if field is not None:
                error = answer.json()["error"]
                assert error["field"] == field or field in json.dumps(error), answer.text

        refused(mallory, good, 404, None)  # another project: it does not exist for them
        refused(bob, good, 404, None)  # same project, not shared: hidden like everywhere
        refused(carol, good, 403, None)  # shared with: may open it, not publish it
        for bad in ("tool", "tool:", ":2", "to ol:2", "tool:2:3", "tool:../x", "x" * 70 + ":1"):
            refused(alice, {"service": "web", "as": bad}, 422, "as")
        refused(alice, {"service": "web", "as": f"{lab['foreign']}:9"}, 422, "as")
        refused(alice, {"service": "nope", "as": "tool:2"}, 422, "service")
        refused(alice, {"service": "web", "as": "tool:1"}, 409, "as")
        refused(alice, good, 422, "registry")  # the project has no registry yet
        refused(alice, {**good, "extra": 1}, 422, "extra")

        assert admin.post(
            "/api/v1/projects/default/registries",
            json={"registry": "127.0.0.1:9", "username": "u", "password": "p"},
        ).is_success
        refused(alice, {**good, "registry": "ghcr.io"}, 422, "registry")  # not the project's
        wait_for(
            lambda: alice.get(f"/api/v1/instances/{inst}").json()["state"] == "running",
            60,
            what="instance running",
        )
        # a process-runtime device has no engine to commit with: it refuses, 503
        refused(alice, good, 503, None)

        # demoted to viewer: still the owner, no longer allowed to publish
        assert admin.put(
            "/api/v1/projects/default/members/alice", json={"role": "viewer"}
        ).is_success
        refused(alice, good, 403, None)

        # nothing was recorded anywhere
        assert admin.get("/api/v1/applications/tool").json()["versions"] == ["1"]
        other = admin.get(f"/api/v1/applications/{lab['foreign']}").json()
        assert other["versions"] == ["1"]
