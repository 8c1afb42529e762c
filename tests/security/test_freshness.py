"""Attack: keep using a stream after losing the right to it.

A user opens the live event stream and an interactive exec session, then
their token is revoked, or they are removed from the project: both must end
within seconds (the WebSocket with close code 1008 and the reason), while
streams of users whose rights did not change stay open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Fleet
from tests.support.procs import ServerProc, wait_for

pytestmark = pytest.mark.timeout(180)

CLOSE_WITHIN = 5.0


class EventStream:
    """``GET /events/stream`` read in a thread; notes when and how it ended."""

    def __init__(self, server: ServerProc, token: str) -> None:
        self.lines: list[str] = []
        self.ended_at: float | None = None
        self.status: int | None = None
        self._thread = threading.Thread(target=self._read, args=(server, token), daemon=True)
        self._thread.start()
        wait_for(lambda: ": connected" in self.lines, 15, what="event stream open")

    def _read(self, server: ServerProc, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.stream(
                "GET", f"{server.url}/api/v1/events/stream", headers=headers, timeout=60
            ) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    self.lines.append(line)
        except httpx.HTTPError as exc:
            self.lines.append(f"broken: {exc!r}")
        self.ended_at = time.monotonic()

    @property
    def open(self) -> bool:
        return self.ended_at is None


def _wait_online(server: ServerProc, device: str) -> None:
    with server.client() as client:
        wait_for(lambda: client.device(device)["is_online"], 30, what="device online")


def _user_with_token(server: ServerProc, name: str, role: str) -> tuple[str, str]:
    with server.client() as admin:
        admin.create_user(name, password="correct horse battery")
        admin.add_member("default", name, role)
        token = admin.create_token(f"{name}'s", user=name)
    return str(token["id"]), str(token["token"])


@contextmanager
def _exec_session(server: ServerProc, device: str, token: str) -> Iterator[ClientConnection]:
    """An interactive shell on the device, shown to be working."""
    with connect(
        f"ws://127.0.0.1:{server.port}/api/v1/devices/{device}/exec/ws?tty=false",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=15,
    ) as ws:
        ws.send(b"\x00echo still-here\n")
        seen = b""
        deadline = time.monotonic() + 15
        while b"still-here" not in seen and time.monotonic() < deadline:
            chunk: Any = ws.recv(timeout=15)
            seen += chunk if isinstance(chunk, bytes) else chunk.encode()
        assert b"still-here" in seen, seen
        yield ws


def _closed(ws: ClientConnection, timeout: float) -> ConnectionClosed:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        except ConnectionClosed as exc:
            return exc
        except TimeoutError:
            break
    raise AssertionError(f"the WebSocket was still open after {timeout} s")


def test_revoked_token_closes_its_event_stream_and_exec_session(fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("fresh-dev")
    device = agent.wait_enrolled()
    _wait_online(server, device)
    token_id, token = _user_with_token(server, "ops", "operator")
    _, other_token = _user_with_token(server, "bystander", "viewer")
    events = EventStream(server, token)
    bystander = EventStream(server, other_token)
    with _exec_session(server, device, token) as ws:
        started = time.monotonic()
        with server.client() as admin:
            admin.revoke_token(token_id)
        closed = _closed(ws, CLOSE_WITHIN)
    assert time.monotonic() - started < CLOSE_WITHIN
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    assert "revoked" in closed.rcvd.reason
    wait_for(lambda: not events.open, CLOSE_WITHIN, what="event stream closed")
    assert events.ended_at is not None and events.ended_at - started < CLOSE_WITHIN
    assert events.status == 200
    assert any("the token was revoked" in line for line in events.lines), events.lines
    # Only the revoked token's streams ended.
    assert bystander.open
    with server.http(other_token) as http:
        assert http.get("/api/v1/users/me").status_code == 200
    with server.http(token) as http:
        refused = http.get("/api/v1/users/me")
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    # The interactive session's audit entry was closed, not left open.
    with server.http() as http:

        def audited() -> bool:
            rows = http.get("/api/v1/audit/exec", params={"device": device}).json()["items"]
            mine = [r for r in rows if r["user"] == "ops" and r["interactive"]]
            return len(mine) == 1 and mine[0]["finished_at"] is not None

        wait_for(audited, 10, what="exec audit finished")


def test_removal_from_project_closes_that_users_streams_only(fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("member-dev")
    device = agent.wait_enrolled()
    _wait_online(server, device)
    _, token = _user_with_token(server, "leaver", "operator")
    _, stayer_token = _user_with_token(server, "stayer", "viewer")
    events = EventStream(server, token)
    stayer = EventStream(server, stayer_token)
    with _exec_session(server, device, token) as ws:
        started = time.monotonic()
        with server.client() as admin:
            admin.remove_member("default", "leaver")
        closed = _closed(ws, CLOSE_WITHIN)
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    assert "memberships changed" in closed.rcvd.reason
    wait_for(lambda: not events.open, CLOSE_WITHIN, what="leaver's event stream closed")
    assert events.ended_at is not None and events.ended_at - started < CLOSE_WITHIN
    assert any("memberships changed" in line for line in events.lines), events.lines
    # The token itself still works (only the membership went), but the project is gone
    # for it, and the other member's stream is untouched.
    with server.http(token) as http:
        assert http.get("/api/v1/users/me").json()["projects"] == {}
        assert http.get(f"/api/v1/devices/{device}").status_code == 404
    time.sleep(1)
    assert stayer.open
