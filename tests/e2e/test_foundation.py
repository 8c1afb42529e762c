"""The foundation, end to end: real server process, real agent processes,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, wait_for


def cli(server_url: str, *args: str, token: str = ADMIN_TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgefleet", "--server", server_url, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def online(server, device_id: str) -> bool:  # type: ignore[no-untyped-def]
    with server.client() as client:
        return bool(client.device(device_id)["is_online"])


def test_agents_enroll_stay_online_and_recover(fleet: Fleet, database_url: str | None) -> None:
    server = fleet.start_server()
    key = fleet.key(labels={"site": "chicago"})
    a = fleet.start_agent("alpha", key=key, labels={"tier": "test"})
    b = fleet.start_agent("beta", key=key)
    id_a, id_b = a.wait_enrolled(), b.wait_enrolled()
    assert id_a != id_b
    wait_for(lambda: online(server, id_a) and online(server, id_b), 30, what="both online")

    # The CLI sees the same, as JSON and as a table.
    listed = cli(server.url, "devices", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    devices = {d["id"]: d for d in json.loads(listed.stdout)}
    assert devices[id_a]["is_online"] and devices[id_b]["is_online"]
    assert devices[id_a]["labels"] == {"site": "chicago", "tier": "test"}
    assert devices[id_a]["resources"]["cpus"] >= 1
    assert "process" in devices[id_a]["runtimes"]
    table = cli(server.url, "devices", "list")
    assert "alpha" in table.stdout and "beta" in table.stdout

    # Each device has its events.
    with server.http() as http:

        def kinds() -> set[str]:
            items = http.get(f"/api/v1/devices/{id_a}/events").json()["items"]
            return {e["kind"] for e in items}

        # Written in batches every 0.25 s: wait for them, then they must be there.
        wait_for(lambda: {"device.enrolled", "device.connected"} <= kinds(), 10, what="events")
        assert http.get("/api/v1/devices/nope/events").status_code == 404

    # The credential file is private.
    mode = (a.state_dir / "device.json").stat().st_mode & 0o777
    assert mode == 0o600

    # kill -9: offline within three heartbeats (1 s each here), plus flush slack.
    a.kill()
    started = time.monotonic()
    wait_for(lambda: not online(server, id_a), 10, interval=0.1, what="alpha offline")
    assert time.monotonic() - started < 4.5
    assert online(server, id_b)

    # Restart: same state dir, same device id, online again.
    a2 = fleet.start_agent("alpha-again", key="", servers=[server.url])
    a2.state_dir = a.state_dir
    a2.kill()
    restarted = fleet.start_agent("alpha", key="", servers=[server.url])
    wait_for(lambda: online(server, id_a), 30, what="alpha back online")
    assert restarted.device_id() == id_a
    with server.client() as client:
        assert len(client.devices()) == 2

    # Deleting a device revokes it: its agent says so and exits non-zero.
    removed = cli(server.url, "devices", "rm", "--yes", id_b)
    assert removed.returncode == 0, removed.stderr
    code = b.wait(30)
    assert code == 3
    assert "removed from the server" in b.log()
    with server.client() as client:
        assert [d["id"] for d in client.devices()] == [id_a]


def test_project_members_see_only_their_projects(fleet: Fleet, database_url: str | None) -> None:
    server = fleet.start_server()
    with server.client() as admin:
        admin.create_project("lab-b")
        admin.create_user("bob", password="correct-horse")
        admin.add_member("lab-b", "bob", "operator")
        bob_token = admin.create_token("bob's", user="bob")["token"]
    agent = fleet.start_agent("in-default", key=fleet.key("default"))
    device_a = agent.wait_enrolled()
    agent_b = fleet.start_agent("in-b", key=fleet.key("lab-b"))
    device_b = agent_b.wait_enrolled()

    with server.http(bob_token) as bob:
        listed = bob.get("/api/v1/devices").json()
        assert [d["id"] for d in listed["items"]] == [device_b]
        assert listed["next"] is None
        for path in (f"/api/v1/devices/{device_a}", "/api/v1/projects/default"):
            response = bob.get(path)
            assert response.status_code == 404, path
        assert (
            bob.patch(f"/api/v1/devices/{device_a}", json={"labels": {"x": "y"}}).status_code == 404
        )
        assert bob.delete(f"/api/v1/devices/{device_a}").status_code == 404
        assert bob.post("/api/v1/provisioning-keys", json={"project": "default"}).status_code == 404
        # Inside their own project bob may act as an operator.
        patched = bob.patch(f"/api/v1/devices/{device_b}", json={"labels": {"room": "b12"}})
        assert patched.status_code == 200 and patched.json()["labels"]["room"] == "b12"
    with server.client() as admin:
        assert admin.device(device_a)["labels"] == {}
    # The CLI reports the 404 as one line, without a traceback.
    result = cli(server.url, "devices", "show", device_a, token=bob_token)
    assert result.returncode == 1
    assert "not found" in result.stderr and "Traceback" not in result.stderr


def test_selector_online_filter_and_pagination(fleet: Fleet, database_url: str | None) -> None:
    server = fleet.start_server()
    agents = [
        fleet.start_agent(f"n{i}", key=fleet.key(labels={"site": "a" if i % 2 else "b"}))
        for i in range(3)
    ]
    ids = [a.wait_enrolled() for a in agents]
    wait_for(lambda: all(online(server, i) for i in ids), 30, what="all online")
    agents[0].kill()
    wait_for(lambda: not online(server, ids[0]), 10, what="n0 offline")
    with server.http() as http:
        by_site = http.get("/api/v1/devices", params={"selector": "site=a"}).json()["items"]
        assert [d["id"] for d in by_site] == [ids[1]]
        not_a = http.get("/api/v1/devices", params={"selector": "site!=a"}).json()["items"]
        assert sorted(d["id"] for d in not_a) == sorted([ids[0], ids[2]])
        set_based = http.get("/api/v1/devices", params={"selector": "site in (a,b),!gpu"}).json()
        assert len(set_based["items"]) == 3
        offline = http.get("/api/v1/devices", params={"online": "false"}).json()["items"]
        assert [d["id"] for d in offline] == [ids[0]]
        first = http.get("/api/v1/devices", params={"limit": 2}).json()
        assert len(first["items"]) == 2 and first["next"]
        second = http.get("/api/v1/devices", params={"limit": 2, "cursor": first["next"]}).json()
        paged = [d["id"] for d in first["items"] + second["items"]]
        assert sorted(paged) == sorted(ids) and len(set(paged)) == 3
        assert second["next"] is None
        bad = http.get("/api/v1/devices", params={"selector": "=x"})
        assert bad.status_code == 422
        bad = http.get("/api/v1/devices", params={"selector": "bad key=x"})
        assert bad.status_code == 422 and "selector" in bad.text


def test_bad_input_is_refused_and_changes_nothing(fleet: Fleet) -> None:
    server = fleet.start_server(extra_args=["--max-body-bytes", "4096"])
    with server.http() as http:
        unknown = http.post("/api/v1/provisioning-keys", json={"project": "default", "lables": {}})
        assert unknown.status_code == 422 and "lables" in unknown.json()["message"]
        wrong = http.post("/api/v1/provisioning-keys", json={"project": "default", "labels": "x"})
        assert wrong.status_code == 422 and "labels" in wrong.json()["message"]
        label = http.post("/api/v1/provisioning-keys", json={"labels": {"-bad": "x"}})
        assert label.status_code == 422 and "-bad" in label.text
        value = http.post("/api/v1/provisioning-keys", json={"labels": {"ok": "not ok!"}})
        assert value.status_code == 422
        huge = http.post(
            "/api/v1/provisioning-keys",
            content=json.dumps({"project": "default", "name": "x" * 10000}),
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 413 and "limit" in huge.json()["detail"]
        assert http.get("/api/v1/provisioning-keys").json()["items"] == []
        missing = http.post("/api/v1/provisioning-keys", json={"project": "nope"})
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]

        # A single-use key enrolls once; the second use is refused by name.
        single = http.post("/api/v1/provisioning-keys", json={"max_uses": 1}).json()
        enroll = {"provisioning_key": single["key"], "name": "one"}
        assert http.post("/api/v1/agent/enroll", json=enroll).status_code == 201
        again = http.post("/api/v1/agent/enroll", json={**enroll, "name": "two"})
        assert again.status_code == 401 and "already used" in again.json()["detail"]
        # An expired key.
        short = http.post("/api/v1/provisioning-keys", json={"expires_in": 1}).json()
        time.sleep(1.5)
        expired = http.post("/api/v1/agent/enroll", json={"provisioning_key": short["key"]})
        assert expired.status_code == 401 and "expired" in expired.json()["detail"]
        # A revoked key.
        revoked = http.post("/api/v1/provisioning-keys", json={}).json()
        assert http.delete(f"/api/v1/provisioning-keys/{revoked['id']}").status_code == 200
        refused = http.post("/api/v1/agent/enroll", json={"provisioning_key": revoked["key"]})
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        devices = http.get("/api/v1/devices").json()["items"]
        assert [d["name"] for d in devices] == ["one"]

    # The agent reports a refused key clearly and exits 2 instead of retrying.
    agent = fleet.start_agent("refused", key=single["key"])
    assert agent.wait(30) == 2
    assert "already used" in agent.log()


def test_tokens_hashed_listed_revoked_and_expiring(fleet: Fleet) -> None:
    server = fleet.start_server()
    with server.client() as admin:
        created = admin.create_token("ci", expires_in=2)
        listed = admin.tokens()
        assert created["token"] not in json.dumps(listed)
        assert any(
            t["id"] == created["id"] and t["prefix"] == created["token"][:10] for t in listed
        )
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/api/v1/devices").status_code == 401
        bad = anonymous.get("/api/v1/devices", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        ok = anonymous.get(
            "/api/v1/devices", headers={"Authorization": f"Bearer {created['token']}"}
        )
        assert ok.status_code == 200
    with server.client() as admin:
        # Its last use is noted (off the request's path, so shortly after).
        wait_for(
            lambda: next(t for t in admin.tokens() if t["id"] == created["id"])["last_used_at"],
            10,
            what="last_used_at",
        )
    with httpx.Client(base_url=server.url) as anonymous:
        time.sleep(2.5)
        late = anonymous.get(
            "/api/v1/devices", headers={"Authorization": f"Bearer {created['token']}"}
        )
        assert late.status_code == 401 and "expired" in late.json()["detail"]
    with server.client() as admin:
        second = admin.create_token("other")
        admin.revoke_token(second["id"])
    with server.http(second["token"]) as revoked:
        response = revoked.get("/api/v1/devices")
        assert response.status_code == 401 and "revoked" in response.json()["detail"]
    # The bootstrap token keeps working, and the database never saw a secret.
    db_file = server.data_dir / "edgefleet.db"
    assert ADMIN_TOKEN.encode() not in db_file.read_bytes()
    assert second["token"].encode() not in db_file.read_bytes()


def test_openapi_docs_and_health(fleet: Fleet) -> None:
    server = fleet.start_server()
    with httpx.Client(base_url=server.url) as http:
        health = http.get("/api/v1/health").json()
        assert health["status"] == "ok" and health["database"] == "ok"
        spec = http.get("/api/openapi.json").json()
        assert "/api/v1/devices" in spec["paths"]
        assert http.get("/api/docs").status_code == 200


@pytest.mark.parametrize("flag", ["--port", "--heartbeat-interval"])
def test_server_flag_errors_are_one_line(flag: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [sys.executable, "-m", "edgefleet", "server", flag, "-5", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert flag in result.stderr
