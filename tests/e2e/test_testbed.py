"""A shared testbed (issue 20): two projects, real agents (process runtime).

- The owner lends a device; the guest books it exclusively, deploys inside its
  reservation, sees nothing of the owner's; the owner's own job waits out the
  exclusive booking; revoking the loan stops the guest's workload (a real
  process on this machine) with "loan revoked" in its device state.
- A dry run names every kind of conflict; a declared peripheral the device
  lacks makes it online but not ready.
- ``edgefleet reservations create --count --spread`` through the real CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, ServerProc, base_env, wait_for

OWNER, GUEST = "lab-owner", "lab-guest"


def spec(seconds: int) -> dict[str, Any]:
    """A process service whose command line is unique to the test (found with pgrep)."""
    return {
        "services": {"s": {"x-edgefleet-runtime": "process", "command": ["sleep", str(seconds)]}}
    }


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def two_projects(server: ServerProc) -> tuple[httpx.Client, httpx.Client]:
    """Projects OWNER and GUEST, each owned by its own user; their clients."""
    tokens = []
    with server.http() as admin:
        for name in (OWNER, GUEST):
            ok(admin.post("/api/v1/projects", json={"name": name}), 201)
            ok(admin.post("/api/v1/users", json={"name": f"{name}-u", "password": "x" * 16}), 201)
            ok(
                admin.post(
                    f"/api/v1/projects/{name}/members", json={"user": f"{name}-u", "role": "owner"}
                ),
                201,
            )
            made = ok(admin.post("/api/v1/tokens", json={"user": f"{name}-u", "name": "t"}), 201)
            tokens.append(made["token"])
    return server.http(tokens[0]), server.http(tokens[1])


def online(http: httpx.Client, device: str) -> None:
    wait_for(
        lambda: http.get(f"/api/v1/devices/{device}").json().get("is_online"),
        30,
        what=f"{device} online",
    )


def running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


def device_row(http: httpx.Client, job: str, device: str) -> dict[str, Any]:
    rows = ok(http.get(f"/api/v1/jobs/{job}"))["devices"]
    return next((r for r in rows if r["device"] == device), {})


def test_guest_runs_inside_its_booking_sees_nothing_and_stops_on_revoke(
    fleet: Fleet, sqlite_only: None
) -> None:
    server = fleet.start_server()
    owner, guest = two_projects(server)
    key = fleet.key(OWNER, labels={"site": "chicago", "room": "b12"})
    dev = fleet.start_agent("lent", key=key).wait_enrolled()
    online(owner, dev)
    ok(owner.patch(f"/api/v1/devices/{dev}", json={"metadata": {"contact": "alice@x"}}))
    for who, app, seconds in ((owner, "owner-app", 7301), (guest, "guest-app", 7302)):
        project = OWNER if who is owner else GUEST
        body = {"project": project, "name": app, "version": "1", "spec": spec(seconds)}
        ok(who.post("/api/v1/applications", json=body), 201)
    owner_job = ok(
        owner.post("/api/v1/jobs", json={"application": "owner-app", "devices": [dev]}), 201
    )["id"]
    wait_for(lambda: running("sleep 7301"), 30, what="the owner's workload")

    # before the loan the guest sees nothing at all
    assert guest.get(f"/api/v1/devices/{dev}").status_code == 404
    loan = {"project": GUEST, "rights": {"process": True}, "expose_labels": ["site"]}
    ok(owner.post(f"/api/v1/devices/{dev}/loans", json=loan), 201)
    seen = ok(guest.get(f"/api/v1/devices/{dev}"))
    assert seen["lent"] and seen["is_online"]
    assert seen["labels"] == {"site": "chicago"}  # room is not exposed
    assert seen["metadata"] == {} and seen["project"] == ""
    assert [d["id"] for d in ok(guest.get("/api/v1/devices"))["items"]] == [dev]
    # ...and nothing of the owner's: jobs, events, data, logs, exec, changes
    assert guest.get(f"/api/v1/jobs/{owner_job}").status_code == 404
    assert guest.get(f"/api/v1/jobs/{owner_job}/logs").status_code == 404
    assert guest.get(f"/api/v1/jobs/{owner_job}/data").status_code == 404
    assert owner_job not in json.dumps(ok(guest.get("/api/v1/jobs")))
    events = ok(guest.get(f"/api/v1/devices/{dev}/events"))["items"]
    assert not any("alice" in json.dumps(e) or e.get("job") == owner_job for e in events)
    assert guest.post(f"/api/v1/devices/{dev}/exec", json={"command": ["id"]}).status_code == 404
    assert guest.get(f"/api/v1/devices/{dev}/logs").status_code == 404
    assert guest.patch(f"/api/v1/devices/{dev}", json={"labels": {"x": "y"}}).status_code == 404
    assert guest.delete(f"/api/v1/devices/{dev}/loans/{GUEST}").status_code == 404

    # an exclusive booking opening in a few seconds; a job inside it waits for it
    booking: dict[str, Any] = {"project": GUEST, "devices": [dev]}
    booking["start"] = iso(timedelta(seconds=4))
    booking |= {"end": iso(timedelta(hours=1)), "exclusive": True}
    reservation = ok(guest.post("/api/v1/reservations", json=booking), 201)
    assert reservation["devices"] == [dev] and reservation["state"] == "upcoming"
    guest_job = ok(
        guest.post(
            "/api/v1/jobs", json={"application": "guest-app", "reservation": reservation["id"]}
        ),
        201,
    )
    assert guest_job["reservation"] == reservation["id"]
    waiting = device_row(guest, guest_job["id"], dev)
    assert waiting["state"] == "pending" and "waiting for reservation" in waiting["error"]
    assert ok(guest.get(f"/api/v1/jobs/{guest_job['id']}"))["state"] == "pending"
    assert not running("sleep 7302")

    wait_for(lambda: running("sleep 7302"), 30, what="the guest's workload in its window")
    wait_for(
        lambda: device_row(guest, guest_job["id"], dev).get("state") == "running",
        30,
        what="guest job running",
    )
    # the owner's own job is another project's here: it waits out the exclusive booking
    held = device_row(owner, owner_job, dev)
    assert held["state"] == "pending" and "booked exclusively by another project" in held["error"]
    wait_for(lambda: not running("sleep 7301"), 30, what="the owner's workload set aside")
    assert "alice" not in json.dumps(ok(guest.get(f"/api/v1/jobs/{guest_job['id']}")))
    # its own workload there is the guest's: commands and logs of its job work
    inside = {"command": ["echo", "hi"], "device": dev, "service": "s"}
    answer = ok(guest.post(f"/api/v1/jobs/{guest_job['id']}/exec", json=inside))
    assert answer["exit_code"] == 0 and answer["stdout"].strip() == "hi"
    assert guest.get(f"/api/v1/jobs/{guest_job['id']}/logs", params={"tail": 5}).status_code == 200
    # ...which the owner cannot reach, as any other project's job
    assert owner.post(f"/api/v1/jobs/{guest_job['id']}/exec", json=inside).status_code == 404

    # revocation: the guest's workload stops within a minute, with the reason
    revoked_at = datetime.now(UTC)
    assert owner.delete(f"/api/v1/devices/{dev}/loans/{GUEST}").status_code == 204
    wait_for(lambda: not running("sleep 7302"), 60, what="the guest's workload stopped")
    stopped_in = datetime.now(UTC) - revoked_at
    print(f"revoking the loan stopped the guest's workload in {stopped_in.total_seconds():.2f}s")
    assert stopped_in < timedelta(seconds=60)
    row = device_row(guest, guest_job["id"], dev)
    assert row["state"] == "failed" and "loan revoked" in row["error"]
    assert guest.get(f"/api/v1/devices/{dev}").status_code == 404
    owner.close()
    guest.close()


def test_dry_run_names_every_conflict_and_a_missing_peripheral_means_not_ready(
    fleet: Fleet, database_url: str | None
) -> None:
    """On both stores (the booking queries are the most engine-sensitive)."""
    server = fleet.start_server()
    owner, guest = two_projects(server)
    key = fleet.key(OWNER, labels={"type": "node"})
    a = fleet.start_agent("free", key=key).wait_enrolled()
    b = fleet.start_agent("booked", key=key).wait_enrolled()
    c = fleet.start_agent("rationed", key=key).wait_enrolled()
    d = fleet.start_agent("unlent", key=key).wait_enrolled()
    gone = fleet.start_agent("gone", key=key)
    e = gone.wait_enrolled()
    cam_key = fleet.key(OWNER, labels={"type": "cam"})
    cam = fleet.start_agent("cam", key=cam_key).wait_enrolled()
    with_camera = fleet.start_agent(
        "cam-ok", key=cam_key, extra_args=["--peripheral", "camera=/dev/null"]
    ).wait_enrolled()
    for device in (a, b, c, d, e, cam, with_camera):
        online(owner, device)
    gone.stop()
    wait_for(
        lambda: not owner.get(f"/api/v1/devices/{e}").json()["is_online"], 60, what="gone offline"
    )

    # ready means ready: a camera node without a camera is online but not ready
    rules = {"items": [{"selector": "type=cam", "peripherals": ["camera"]}]}
    assert guest.put(f"/api/v1/projects/{OWNER}/device-requirements", json=rules).status_code == 404
    token = owner.headers["authorization"].removeprefix("Bearer ")
    env = base_env(EDGEFLEET_SERVER=server.url, EDGEFLEET_TOKEN=token)
    cli = [sys.executable, "-m", "edgefleet", "devices", "require", "camera"]
    declared = subprocess.run(
        [*cli, "-p", OWNER, "-l", "type=cam"], env=env, capture_output=True, text=True
    )
    assert declared.returncode == 0, declared.stderr
    assert ok(owner.get(f"/api/v1/projects/{OWNER}/device-requirements"))["items"] == [
        {"selector": "type=cam", "peripherals": ["camera"]}
    ]
    shown = ok(owner.get(f"/api/v1/devices/{cam}"))
    assert shown["is_online"] and not shown["is_ready"]
    assert shown["not_ready_reason"] == "missing peripheral camera (required for type=cam)"
    assert ok(owner.get(f"/api/v1/devices/{a}"))["is_ready"]
    equipped = ok(owner.get(f"/api/v1/devices/{with_camera}"))
    assert equipped["is_ready"] and equipped["not_ready_reason"] is None
    counts = ok(owner.get("/api/v1/fleet"))  # the dashboard counts the same way
    assert (counts["devices"], counts["online"], counts["ready"]) == (7, 6, 5)

    for device in (a, b, c, e, cam):
        share = {"time_share": 0.01, "share_window_hours": 24} if device == c else {}
        ok(owner.post(f"/api/v1/devices/{device}/loans", json={"project": GUEST, **share}), 201)
    start, end = iso(timedelta(minutes=1)), iso(timedelta(hours=2))
    window = {"start": start, "end": end, "exclusive": True}
    ok(owner.post("/api/v1/reservations", json={"project": OWNER, "devices": [b], **window}), 201)

    with server.http(ADMIN_TOKEN) as admin:  # an admin sees the unlent device too
        asked = {"project": GUEST, "devices": [a, b, c, d, e, cam], **window}
        dry = ok(admin.post("/api/v1/reservations", json={**asked, "dry_run": True}))
        reasons = {x["device"]: x["reason"] for x in dry["conflicts"]}
        assert dry["devices"] == [a]
        assert reasons[b].startswith("already booked (exclusively")
        assert reasons[c].startswith("owner's time share exhausted")
        assert reasons[d].startswith("policy refuses")
        assert reasons[e] == "offline"
        assert reasons[cam].startswith("not ready: missing peripheral camera")
        # nothing was held; the real booking is refused with the same conflicts
        assert ok(admin.get("/api/v1/reservations", params={"project": GUEST}))["items"] == []
        refused = admin.post("/api/v1/reservations", json=asked)
        assert refused.status_code == 409
        assert refused.json()["conflicts"] == dry["conflicts"]
    # the guest itself cannot even name the unlent device
    named = guest.post("/api/v1/reservations", json={**asked, "devices": [d]})
    assert named.status_code == 422 and named.json()["error"]["field"] == "devices"
    owner.close()
    guest.close()


def test_cli_books_count_devices_spread_across_sites(fleet: Fleet, sqlite_only: None) -> None:
    server = fleet.start_server()
    devices = {}
    for name, site in (("c1", "chicago"), ("c2", "chicago"), ("c3", "chicago"), ("n1", "nyc")):
        key = fleet.key("default", labels={"kind": "pi", "site": site})
        devices[name] = fleet.start_agent(name, key=key).wait_enrolled()
    with server.http() as admin:
        for device in devices.values():
            online(admin, device)
    env = base_env(EDGEFLEET_SERVER=server.url, EDGEFLEET_TOKEN=ADMIN_TOKEN)
    argv = [sys.executable, "-m", "edgefleet", "reservations", "create", "--project", "default"]
    argv += ["--selector", "kind=pi", "--count", "2", "--spread", "site", "--end", "+2h"]

    def cli(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*argv, *extra], env=env, capture_output=True, text=True, timeout=60)

    dry = cli("--dry-run", "-o", "json")
    assert dry.returncode == 0, dry.stderr
    picked = json.loads(dry.stdout)["devices"]
    assert sorted(picked) == sorted([devices["c1"], devices["n1"]])  # one per site
    booked = cli()
    assert booked.returncode == 0, booked.stderr
    assert "booked r" in booked.stdout and "c1" in booked.stdout and "n1" in booked.stdout
    # the same again: two of chicago's are free, but nyc's only device is taken
    again = cli("--count", "4")
    assert again.returncode == 1
    assert "not booked; conflicts:" in again.stdout and "already booked" in again.stdout
    assert "Traceback" not in again.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "edgefleet", "reservations", "list", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert [r["count"] for r in json.loads(listed.stdout)] == [2]
    # a job inside the booking runs on its two devices; extending keeps it, cancelling ends it
    reservation = json.loads(listed.stdout)[0]["id"]
    with server.http() as admin:
        app = {"project": "default", "name": "inside", "version": "1", "spec": spec(7401)}
        ok(admin.post("/api/v1/applications", json=app), 201)
        job = ok(
            admin.post("/api/v1/jobs", json={"application": "inside", "reservation": reservation}),
            201,
        )["id"]
        assert sorted(ok(admin.get(f"/api/v1/jobs/{job}"))["targets"]) == sorted(picked)
        wait_for(
            lambda: admin.get(f"/api/v1/jobs/{job}").json()["device_counts"] == {"running": 2},
            30,
            what="the job running on the booked devices",
        )
        extend = [sys.executable, "-m", "edgefleet", "reservations", "extend", reservation]
        moved = subprocess.run(
            [*extend, "--end", "+3h", "-o", "json"], env=env, capture_output=True, text=True
        )
        assert moved.returncode == 0, moved.stderr
        assert json.loads(moved.stdout)["end"] > json.loads(listed.stdout)[0]["end"]
        # shortened to end in a moment: at its end the workloads stop, "expired"
        shorten = [sys.executable, "-m", "edgefleet", "reservations", "shorten", reservation]
        cut = subprocess.run([*shorten, "--end", "+3s"], env=env, capture_output=True, text=True)
        assert cut.returncode == 0, cut.stderr
        wait_for(lambda: not running("sleep 7401"), 30, what="the job's workloads stopped")
        wait_for(
            lambda: admin.get(f"/api/v1/jobs/{job}").json()["state"] == "expired",
            30,
            what="the job expired with its reservation",
        )
        rows = ok(admin.get(f"/api/v1/jobs/{job}"))["devices"]
        assert {r["state"] for r in rows} == {"expired"}
        assert all("reservation" in r["error"] and "ended" in r["error"] for r in rows)
        cancel = [sys.executable, "-m", "edgefleet", "reservations", "cancel", reservation]
        assert subprocess.run(cancel, env=env, capture_output=True).returncode == 0
        assert ok(admin.get("/api/v1/reservations"))["items"] == []


def test_portal_lends_books_and_draws_the_calendar(fleet: Fleet, sqlite_only: None) -> None:
    import re

    server = fleet.start_server()
    with server.client() as client:
        client.set_password("admin", "portal-password-1")
        client.create_project("visitors")
    dev = fleet.start_agent("pi-cal", key=fleet.key("default")).wait_enrolled()
    with server.http() as admin:
        online(admin, dev)
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        page = browser.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "username": "admin", "password": "portal-password-1"}
        assert browser.post("/login", data=form).status_code == 303

        def token() -> str:
            found = re.search(r'name="csrf" value="([^"]+)"', browser.get("/reservations").text)
            assert found is not None
            return found.group(1)

        lent = browser.post(f"/devices/{dev}/loans", data={"csrf": token(), "project": "visitors"})
        assert lent.status_code == 303
        assert "visitors" in browser.get(f"/devices/{dev}").text
        start = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        end = (datetime.now(UTC) + timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M")
        booking = {"csrf": token(), "project": "visitors", "devices": "pi-cal"}
        booking |= {"start": start, "end": end, "exclusive": "exclusive"}
        checked = browser.post("/reservations", data={**booking, "action": "check"})
        assert checked.status_code == 200 and f"Would book: {dev}" in checked.text
        booked = browser.post("/reservations", data={**booking, "action": "book"})
        assert booked.status_code == 303, booked.text
        calendar = browser.get(booked.headers["location"]).text
        assert 'class="cal-device"' in calendar and "pi-cal" in calendar
        assert calendar.count("cal-cell exclusive") >= 2  # 30 hours span two days
        again = browser.post("/reservations", data={**booking, "action": "book"})
        assert again.status_code == 409 and "already booked" in again.text
        with server.http() as admin:
            visitors = ok(admin.get("/api/v1/projects/visitors"))["id"]
        revoked = browser.post(f"/devices/{dev}/loans/{visitors}/revoke", data={"csrf": token()})
        assert revoked.status_code == 303
        assert "not lent" in browser.get(f"/devices/{dev}").text
