"""A guest project attacks a device lent to it; anyone attacks reservations.

One server, one real agent (process runtime) in project ``tb-owner``, lent
to ``tb-guest`` with no label exposed. The guest's owner (the strongest role
it has) tries to lend, revoke, change, run commands on and read the owner's
device, to probe its hidden labels with a selector, and to book devices it
was never lent; everyone sends malformed and oversized bodies. Every refusal
must leave the owner's device, loans and reservations as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import AgentProc, Proc, ServerProc, stop_all, wait_for

OWNER, GUEST = "tb-owner", "tb-guest"
SECRET = "s3cret-owner-value"


@dataclass
class Lab:
    server: ServerProc
    device: str
    job: str
    owner: httpx.Client
    guest: httpx.Client

    def state(self) -> Any:
        """What an attack must not change, as the owner sees it."""
        return (
            self.owner.get(f"/api/v1/devices/{self.device}").json()["metadata"],
            self.owner.get(f"/api/v1/devices/{self.device}").json()["labels"],
            self.owner.get(f"/api/v1/devices/{self.device}/loans").json()["items"],
            self.owner.get("/api/v1/reservations").json()["items"],
            self.guest.get("/api/v1/reservations").json()["items"],
            self.owner.get(f"/api/v1/projects/{OWNER}/device-requirements").json()["items"],
        )


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir: Path = tmp_path_factory.mktemp("testbed-attacks")
    procs: list[Proc] = []
    try:
        server = ServerProc(workdir)
        procs.append(server)
        server.start()
        tokens = []
        with server.http() as admin:
            for name in (OWNER, GUEST):
                _ok(admin.post("/api/v1/projects", json={"name": name}))
                _ok(admin.post("/api/v1/users", json={"name": f"{name}-u", "password": "p" * 16}))
                member = {"user": f"{name}-u", "role": "owner"}
                _ok(admin.post(f"/api/v1/projects/{name}/members", json=member))
                tokens.append(
                    _ok(admin.post("/api/v1/tokens", json={"user": f"{name}-u"}))["token"]
                )
            key = _ok(
                admin.post(
                    "/api/v1/provisioning-keys",
                    json={"project": OWNER, "labels": {"room": "b12"}},
                )
            )["key"]
        agent = AgentProc(workdir, [server.url], key=key, name="lent")
        procs.append(agent)
        agent.start()
        device = agent.wait_enrolled()
        owner, guest = server.http(tokens[0]), server.http(tokens[1])
        _ok(owner.patch(f"/api/v1/devices/{device}", json={"metadata": {"contact": SECRET}}))
        spec = {"services": {"s": {"x-edgefleet-runtime": "process", "command": ["sleep", "9"]}}}
        app = {"project": OWNER, "name": "own", "version": "1", "spec": spec}
        _ok(owner.post("/api/v1/applications", json=app))
        job = {"application": "own", "devices": [device], "environment": {"TOKEN": SECRET}}
        job_id = _ok(owner.post("/api/v1/jobs", json=job))["id"]
        _ok(owner.post(f"/api/v1/devices/{device}/loans", json={"project": GUEST}))
        wait_for(
            lambda: owner.get(f"/api/v1/devices/{device}").json()["is_online"], 30, what="online"
        )
        yield Lab(server, device, job_id, owner, guest)
        owner.close()
        guest.close()
    finally:
        stop_all(procs)


def test_the_guest_cannot_lend_revoke_change_or_run_on_the_owners_device(lab: Lab) -> None:
    before = lab.state()
    g, dev = lab.guest, lab.device
    attempts = [
        g.post(f"/api/v1/devices/{dev}/loans", json={"project": GUEST}),
        g.post(f"/api/v1/devices/{dev}/loans", json={"project": "*"}),
        g.delete(f"/api/v1/devices/{dev}/loans/{GUEST}"),
        g.patch(f"/api/v1/devices/{dev}", json={"metadata": {"contact": "mallory"}}),
        g.patch(f"/api/v1/devices/{dev}", json={"labels": {"room": None}}),
        g.delete(f"/api/v1/devices/{dev}"),
        g.post(f"/api/v1/devices/{dev}/exec", json={"command": ["cat", "/etc/hostname"]}),
        g.get(f"/api/v1/devices/{dev}/logs"),
        g.put(f"/api/v1/projects/{OWNER}/device-requirements", json={"items": []}),
        g.get(f"/api/v1/jobs/{lab.job}"),
        g.post(f"/api/v1/jobs/{lab.job}/cancel"),
        g.get(f"/api/v1/jobs/{lab.job}/logs"),
        g.get(f"/api/v1/jobs/{lab.job}/data"),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts), [
        (r.request.method, r.request.url.path, r.status_code) for r in attempts
    ]
    assert lab.state() == before


def test_the_guest_reads_nothing_of_the_owners(lab: Lab) -> None:
    g, dev = lab.guest, lab.device
    seen = _ok(g.get(f"/api/v1/devices/{dev}"))
    assert seen["metadata"] == {} and seen["labels"] == {} and seen["project"] == ""
    assert seen["resources"]["hostname"] == "" and seen["agent_version"] == ""
    pages = [
        g.get("/api/v1/devices").text,
        g.get(f"/api/v1/devices/{dev}").text,
        g.get(f"/api/v1/devices/{dev}/loans").text,
        g.get(f"/api/v1/devices/{dev}/events").text,
        g.get("/api/v1/jobs").text,
        g.get("/api/v1/events").text,
        g.get("/api/v1/reservations").text,
        g.get(f"/devices/{dev}", headers={"accept": "text/html"}).text,
    ]
    for page in pages:
        assert SECRET not in page and "b12" not in page and lab.job not in page
    assert g.get(f"/api/v1/projects/{OWNER}/device-requirements").status_code == 404


def test_a_hidden_label_cannot_be_probed_with_a_selector(lab: Lab) -> None:
    spec = {"services": {"s": {"x-edgefleet-runtime": "process", "command": ["sleep", "9"]}}}
    app = {"project": GUEST, "name": "probe", "version": "1", "spec": spec}
    _ok(lab.guest.post("/api/v1/applications", json=app))
    job = _ok(lab.guest.post("/api/v1/jobs", json={"application": "probe", "selector": "room=b12"}))
    assert _ok(lab.guest.get(f"/api/v1/jobs/{job['id']}"))["devices"] == []
    booking = {"project": GUEST, "selector": "room=b12", "count": 1, "dry_run": True}
    booking |= {"start": iso(timedelta(hours=1)), "end": iso(timedelta(hours=2))}
    dry = _ok(lab.guest.post("/api/v1/reservations", json=booking))
    assert dry["devices"] == []
    _ok(lab.guest.post(f"/api/v1/jobs/{job['id']}/cancel"))


def test_no_booking_of_devices_never_lent(lab: Lab) -> None:
    before = lab.state()
    window = {"start": iso(timedelta(hours=1)), "end": iso(timedelta(hours=2))}
    # the owner revokes: the guest can no longer even name the device
    assert lab.owner.delete(f"/api/v1/devices/{lab.device}/loans/{GUEST}").status_code == 204
    try:
        named = lab.guest.post(
            "/api/v1/reservations", json={"project": GUEST, "devices": [lab.device], **window}
        )
        assert named.status_code == 422 and named.json()["error"]["field"] == "devices"
        # nor book for the owner's project
        theirs = lab.guest.post(
            "/api/v1/reservations", json={"project": OWNER, "devices": [lab.device], **window}
        )
        assert theirs.status_code == 404
    finally:
        _ok(lab.owner.post(f"/api/v1/devices/{lab.device}/loans", json={"project": GUEST}))
    after = lab.state()
    assert after[3:] == before[3:] and after[:2] == before[:2]


BAD_BOOKINGS: list[tuple[dict[str, Any], str]] = [
    ({"end": "2030-01-01T00:00:00Z", "start": "2030-01-02T00:00:00Z"}, "end"),
    ({"end": "2001-01-01T00:00:00Z", "start": "2000-01-01T00:00:00Z"}, "end"),
    ({"devices": ["d"] * 1001}, "devices"),
    ({"devices": []}, "devices"),
    ({"devices": ["x" * 500]}, "devices"),
    ({"selector": "a=" + "b" * 2000, "devices": None}, "selector"),
    ({"count": 0}, "count"),
    ({"count": 10**9}, "count"),
    ({"spread": "not a label!"}, "spread"),
    ({"exclusive": "sometimes"}, "exclusive"),
    ({"surprise": True}, "surprise"),
    ({"end": "+3 fortnights"}, "end"),
]


@pytest.mark.parametrize(("change", "field"), BAD_BOOKINGS)
def test_malformed_bookings_are_refused_naming_the_field(
    lab: Lab, change: dict[str, Any], field: str
) -> None:
    before = lab.state()
    body: dict[str, Any] = {"project": GUEST, "devices": [lab.device]}
    body |= {"start": iso(timedelta(hours=1)), "end": iso(timedelta(hours=2))}
    body |= change
    body = {k: v for k, v in body.items() if v is not None}
    refused = lab.guest.post("/api/v1/reservations", json=body)
    assert refused.status_code == 422, refused.text
    assert field in refused.text
    assert lab.state() == before


def test_too_long_windows_bad_changes_and_bad_loans_are_refused(lab: Lab) -> None:
    before = lab.state()
    g, o, dev = lab.guest, lab.owner, lab.device
    year = {"start": iso(timedelta(hours=1)), "end": iso(timedelta(days=200))}
    long = g.post("/api/v1/reservations", json={"project": GUEST, "devices": [dev], **year})
    assert long.status_code == 422 and long.json()["error"]["field"] == "end"
    made = _ok(
        g.post(
            "/api/v1/reservations",
            json={
                "project": GUEST,
                "devices": [dev],
                "start": iso(timedelta(hours=1)),
                "end": iso(timedelta(hours=2)),
                "exclusive": False,
            },
        )
    )
    try:
        backwards = g.patch(f"/api/v1/reservations/{made['id']}", json={"end": iso(timedelta())})
        assert backwards.status_code == 422 and "end" in backwards.text
        # the owner of the device cannot change or cancel the guest's booking
        assert o.delete(f"/api/v1/reservations/{made['id']}").status_code == 404
        assert (
            o.patch(
                f"/api/v1/reservations/{made['id']}", json={"end": iso(timedelta(hours=3))}
            ).status_code
            == 404
        )
    finally:
        assert g.delete(f"/api/v1/reservations/{made['id']}").status_code == 204
    bad_loans = [
        {"project": OWNER},  # its own project
        {"project": "no-such-project"},
        {"project": GUEST, "time_share": 2},
        {"project": GUEST, "share_window_hours": 0},
        {"project": GUEST, "rights": {"root": True}},
        {"project": GUEST, "expose_labels": ["bad key!"]},
        {"project": GUEST, "rights": {"capabilities": ["X"] * 65}},
    ]
    for body in bad_loans:
        answer = o.post(f"/api/v1/devices/{dev}/loans", json=body)
        assert answer.status_code == 422, (body, answer.text)
    twice = o.post(f"/api/v1/devices/{dev}/loans", json={"project": GUEST})
    assert twice.status_code == 409
    everyone = _ok(o.post(f"/api/v1/devices/{dev}/loans", json={"project": "*"}))
    assert everyone["project"] == "*" and everyone["project_id"] is None
    assert [loan["project"] for loan in _ok(g.get(f"/api/v1/devices/{dev}/loans"))["items"]] == [
        GUEST,
        "*",
    ]
    assert o.delete(f"/api/v1/devices/{dev}/loans/*").status_code == 204
    too_many = {"items": [{"selector": "", "peripherals": ["camera"]}] * 101}
    for rules in (too_many, {"items": [{"selector": "", "peripherals": []}]}):
        answer = o.put(f"/api/v1/projects/{OWNER}/device-requirements", json=rules)
        assert answer.status_code == 422, answer.text
    assert lab.state() == before
