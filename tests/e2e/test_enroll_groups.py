"""Enrollments arriving together are written together, yet answered one by one:
a refused request (used-up key, taken name, forbidden label, unknown key)
stores nothing and never fails the others of its group. A real server, 60
enrollments sent at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import Fleet

FACTS = {
    "agent_version": "test",
    "resources": {"hostname": "rack", "cpu": 1, "memory": 1, "disk": 1, "arch": "amd64"},
    "runtimes": ["sim"],
}


async def _enroll_all(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        return list(
            await asyncio.gather(*(http.post("/api/v1/agent/enroll", json=b) for b in bodies))
        )


def test_a_burst_of_enrollments_is_answered_request_by_request(fleet: Fleet) -> None:
    server = fleet.start_server()
    with server.client() as client:
        limited = client.create_key("default", max_uses=10)
        labelled = client.create_key("default", labels={"tier": "test"})
        open_key = client.create_key("default")
    body = {"labels": {}, "facts": FACTS}
    bodies = (
        # 13 on a key good for 10; 2 asking for a label their key forbids
        [{**body, "provisioning_key": limited["key"], "name": f"l{i}"} for i in range(13)]
        + [
            {**body, "provisioning_key": labelled["key"], "name": f"x{i}", "labels": {"tier": "p"}}
            for i in range(2)
        ]
        # 30 unnamed on one hostname (names must come out distinct), 5 asking for one name
        + [{**body, "provisioning_key": open_key["key"]} for _ in range(30)]
        + [{**body, "provisioning_key": open_key["key"], "name": "twin"} for _ in range(5)]
        + [{**body, "provisioning_key": "efk_made-up", "name": f"u{i}"} for i in range(10)]
    )
    answers = asyncio.run(_enroll_all(server.url, bodies))
    codes = [a.status_code for a in answers]

    limited_codes = codes[:13]
    assert sorted(limited_codes) == [201] * 10 + [401] * 3, limited_codes
    assert codes[13:15] == [422, 422]
    assert answers[13].json()["error"]["field"] == "labels.tier"
    assert codes[15:45] == [201] * 30
    names = {a.json()["name"] for a in answers[15:45]}
    assert len(names) == 30 and "rack" in names
    assert sorted(codes[45:50]) == [201] + [409] * 4
    assert codes[50:] == [401] * 10

    with server.http() as http:
        devices = http.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
        keys = {k["id"]: k for k in http.get("/api/v1/provisioning-keys").json()["items"]}
    assert len(devices) == 10 + 30 + 1  # nothing of a refused request was stored
    assert keys[limited["id"]]["uses"] == 10
    assert keys[labelled["id"]]["uses"] == 0  # refused label clashes gave their use back
    assert len({d["name"] for d in devices}) == len(devices)
    credentials = {a.json()["credential"] for a in answers if a.status_code == 201}
    assert len(credentials) == 41
