"""No single request stalls or exhausts the server: YAML bombs, password
guessing, enrollment guessing and oversized WebSocket messages, each tried
for real against a server process while the API's health is watched."""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, ServerProc, wait_for

PASSWORD = "a-long-enough-password"
HEALTH_BOUND = 0.1  # seconds, from the client, as issue 14 states (p95)
HEALTH_STALL = 1.0  # no answer may wait this long: that would be a blocked loop


class HealthWatch:
    """Polls /api/v1/health in a thread; every answer's time, from the client."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.times: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            client.get("/api/v1/health")  # connect outside the measurement
            while not self._stop.is_set():
                started = time.perf_counter()
                response = client.get("/api/v1/health")
                self.times.append(time.perf_counter() - started)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                time.sleep(0.01)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def check(self) -> None:
        assert not self.failures, self.failures
        assert len(self.times) >= 5, "health was hardly polled"
        # The loop must stay free: 95 % of answers under the bound and none stalled.
        # (Not every answer: the suite runs on 3 workers on 2 cores, and a
        # scheduler hiccup of a few ms over the bound says nothing about the loop.)
        ordered = sorted(self.times)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        assert p95 < HEALTH_BOUND and ordered[-1] < HEALTH_STALL, (
            f"health p95 {p95 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms over "
            f"{len(ordered)} answers (median {statistics.median(ordered) * 1000:.1f} ms)"
        )


def laughs(width: int = 10, levels: int = 9, leaf: str = "lol") -> str:
    text = f'a0: &a0 ["{leaf}"' + f', "{leaf}"' * (width - 1) + "]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]\n"
    return text + "services: {web: {image: nginx}}\n"


BOMBS = {
    "billion-laughs": (laughs(), "the document expands to more than 50000 values"),
    "large-values": (
        laughs(width=2, levels=30, leaf="x" * 1000),
        "the document expands past 4 MiB (YAML aliases repeating large values?)",
    ),
    "deep-nesting": (
        "services: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "the document nests deeper than 32 levels",
    ),
    "huge-key": (
        "services:\n  ? " + "k" * 400_000 + "\n  : {image: x}\n",
        "a mapping key is 400000 characters long",
    ),
}


@pytest.fixture
def server(fleet: Fleet) -> ServerProc:
    return fleet.start_server()


def app_names(http: httpx.Client) -> list[str]:
    return [a["name"] for a in http.get("/api/v1/applications").json()["items"]]


def test_yaml_bombs_are_refused_fast_while_health_stays_fast(server: ServerProc) -> None:
    with server.http() as http, HealthWatch(server.url) as health:
        good = http.post("/api/v1/applications/validate", json={"compose": "services: {}"})
        assert good.status_code == 200 and good.json()["valid"] is False  # workers are up
        for name, (text, message) in BOMBS.items():
            for path, body in [
                ("/api/v1/applications/validate", {"compose": text}),
                (
                    "/api/v1/applications",
                    {"name": f"bomb-{name}", "version": "1", "compose": text},
                ),
            ]:
                started = time.monotonic()
                response = http.post(path, json=body)
                elapsed = time.monotonic() - started
                assert response.status_code == 422, (path, name, response.text[:300])
                # Within the parse budget (2 s) plus room for a loaded CI machine: an
                # unbounded bomb would take minutes and gigabytes instead.
                assert elapsed < 5.0, f"{name} on {path} took {elapsed:.2f} s"
                error = response.json()["error"]
                assert error["field"] == "compose"
                assert message in error["message"], error["message"]
                (finding,) = response.json()["findings"]
                assert finding["line"] is not None and finding["column"] is not None
        # Ten bombs at once: they queue for the parsing threads, the loop stays free.
        with ThreadPoolExecutor(10) as pool:
            codes = list(
                pool.map(
                    lambda _: (
                        http.post(
                            "/api/v1/applications/validate", json={"compose": laughs()}
                        ).status_code
                    ),
                    range(10),
                )
            )
        assert codes == [422] * 10
        time.sleep(0.3)
    health.check()
    with server.http() as http:
        assert not [n for n in app_names(http) if n.startswith("bomb-")]  # nothing stored


def test_a_non_printable_character_is_a_422_naming_it(server: ServerProc) -> None:
    text = "services:\n  web:\n    image: ngi\x01nx\n"
    expected = (
        "the file holds a non-printable character (#x0001); YAML allows only printable "
        "characters, tabs and line breaks"
    )
    with server.http() as http:
        for path, body in [
            ("/api/v1/applications/validate", {"compose": text}),
            ("/api/v1/applications", {"name": "binary", "version": "1", "compose": text}),
        ]:
            response = http.post(path, json=body)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["field"] == "compose"
            assert expected in response.json()["error"]["message"]
            assert response.json()["findings"] == [
                {"level": "error", "key": "", "line": 3, "column": 15, "message": expected}
            ]
        assert "binary" not in app_names(http)
        # A good file is still accepted, and its text is what is stored.
        good = "x-a: &a {image: nginx}\nservices:\n  web: *a\n"
        created = http.post(
            "/api/v1/applications", json={"name": "good", "version": "1", "compose": good}
        )
        assert created.status_code == 201, created.text
        version = http.get("/api/v1/applications/good/versions/1").json()
        assert version["compose"] == good


def test_a_job_environment_cannot_turn_a_file_into_a_bomb(fleet: Fleet) -> None:
    server = fleet.start_server()
    text = (
        "services:\n  web:\n    image: nginx\n    command: ["
        + ", ".join(['"${BIG}"'] * 500)
        + "]\n"
    )
    with server.http() as http:
        created = http.post(
            "/api/v1/applications", json={"name": "envbomb", "version": "1", "compose": text}
        )
        assert created.status_code == 201, created.text
        job = http.post(
            "/api/v1/jobs",
            json={
                "application": "envbomb",
                "selector": {"role": "none"},
                "environment": {"BIG": "x" * 100_000},
            },
        )
        assert job.status_code == 422, job.text
        assert job.json()["error"]["field"] == "environment"
        assert "could expand past 4194304 bytes" in job.json()["error"]["message"]
        assert http.get("/api/v1/jobs").json()["items"] == []


# --- sign-in ----------------------------------------------------------------------------------


def sign_in_form(browser: httpx.Client) -> str:
    """Opens the sign-in form (its cookie stays in ``browser``); its token."""
    page = browser.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def sign_in(url: str, username: str, password: str) -> httpx.Response:
    """The portal's sign-in, as a browser does it: the form, then the post."""
    with httpx.Client(base_url=url, timeout=30) as browser:
        form = {"csrf": sign_in_form(browser), "username": username, "password": password}
        return browser.post("/login", data=form)


def signed_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and "edgefleet_session" in response.headers.get(
        "set-cookie", ""
    )


def make_user(server: ServerProc, name: str) -> None:
    with server.http() as http:
        response = http.post("/api/v1/users", json={"name": name, "password": PASSWORD})
        assert response.status_code == 201, response.text


@contextmanager
def presence(server: ServerProc, device: str) -> Iterator[Callable[[], None]]:
    """Watches the device's is_online and last_seen while the block runs."""
    seen: list[tuple[bool, str | None]] = []
    stop = threading.Event()

    def run() -> None:
        with server.http() as http:
            while not stop.is_set():
                body = http.get(f"/api/v1/devices/{device}").json()
                seen.append((body["is_online"], body.get("last_seen")))
                time.sleep(0.25)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def check() -> None:
        assert seen and all(online for online, _ in seen), f"device went offline: {seen}"

    try:
        yield check
    finally:
        stop.set()
        thread.join(10)


def test_fifty_parallel_wrong_sign_ins_end_in_429_and_starve_nothing(fleet: Fleet) -> None:
    # Offline after 5 missed 1 s heartbeats, not 3: with 3, a presence row is
    # only ~1 s from expiring when it is extended, and a CI machine running
    # three test files at once on two cores flapped it before the storm began.
    # The loop's own stalls are bounded by HealthWatch (HEALTH_STALL).
    server = fleet.start_server(env={"EDGEFLEET_OFFLINE_AFTER_HEARTBEATS": "5"})
    agent = fleet.start_agent("pi")
    device = agent.wait_enrolled()
    with server.http() as http:
        wait_for(lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"], 20)
        before = http.get(f"/api/v1/devices/{device}").json()["last_seen"]
    make_user(server, "victim")
    make_user(server, "bystander")

    browsers = [httpx.Client(base_url=server.url, timeout=30) for _ in range(50)]
    forms = [
        {"csrf": sign_in_form(b), "username": "victim", "password": f"guess-{i}"}
        for i, b in enumerate(browsers)
    ]
    try:
        with HealthWatch(server.url) as health, presence(server, device) as still_online:
            with ThreadPoolExecutor(50) as pool:
                answers = list(
                    pool.map(lambda i: browsers[i].post("/login", data=forms[i]), range(50))
                )
            time.sleep(2.5)  # more than two heartbeats after the storm
            still_online()
        health.check()
    finally:  # closed even when a check fails, so no socket leaks into the next test
        for browser in browsers:
            browser.close()

    refused = [a for a in answers if a.status_code == 429]
    tried = [a for a in answers if a.status_code != 429]
    # Five failures per username a minute: the rest never reach the hash.
    assert len(tried) <= 5 and len(refused) >= 45, [a.status_code for a in answers]
    assert all(a.status_code == 200 and "wrong username or password" in a.text for a in tried)
    for answer in refused:
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert "too many failed sign-ins" in answer.text
        assert "edgefleet_session" not in answer.headers.get("set-cookie", "")
    with server.http() as http:
        after = http.get(f"/api/v1/devices/{device}").json()
    assert after["is_online"] and after["last_seen"] >= before

    # The attacked account waits, even with its right password (the documented
    # price of a per-username budget) ...
    locked = sign_in(server.url, "victim", PASSWORD)
    assert locked.status_code == 429 and not signed_in(locked)
    # ... while another account signs in from the same address: only the five
    # failures count against the address's budget of twenty.
    assert signed_in(sign_in(server.url, "bystander", PASSWORD))
    # Spraying usernames from one address is bounded by the address's budget
    # (twenty a minute, refilled one every 3 s), and then everyone there waits.
    sprayed: list[int] = []
    for i in range(40):
        sprayed.append(sign_in(server.url, f"nobody-{i}", "guess").status_code)
        if sprayed[-1] == 429:
            break
    assert sprayed[-1] == 429 and len(sprayed) <= 30, sprayed
    # The bucket refills continuously, so the wait after a refusal is anywhere
    # up to 3 s: a bystander that signs in only after it is over proves
    # nothing (a slow machine), and is tried again after another refusal.
    assert any(_bystander_refused_after_a_spray(server, attempt) for attempt in range(5))


def _bystander_refused_after_a_spray(server: ServerProc, attempt: int) -> bool:
    """Spray until the address is refused, then sign the bystander in at once
    (its form opened beforehand). True if refused; False if its sign-in came
    after the refusal's wait had passed; fails if it got in before."""
    with httpx.Client(base_url=server.url, timeout=30) as bystander:
        form = {"csrf": sign_in_form(bystander), "username": "bystander", "password": PASSWORD}
        for i in range(10):
            refusal = sign_in(server.url, f"nobody-again-{attempt}-{i}", "guess")
            if refusal.status_code == 429:
                break
        assert refusal.status_code == 429, refusal.status_code
        refused_at, wait = time.monotonic(), int(refusal.headers["Retry-After"])
        answer = bystander.post("/login", data=form)
        if answer.status_code == 429:
            return True
        # Retry-After is the wait rounded up: it was more than wait - 1 seconds.
        assert time.monotonic() - refused_at > wait - 1, "signed in while the address had to wait"
        return False


def test_unknown_users_cost_as_much_as_known_ones(fleet: Fleet) -> None:
    server = fleet.start_server(
        extra_args=["--login-failures-per-ip", "1000", "--login-failures-per-user", "1000"]
    )
    make_user(server, "known")

    def timed(name: str) -> float:
        started = time.perf_counter()
        answer = sign_in(server.url, name, "wrong-password")
        assert answer.status_code == 200 and "wrong username or password" in answer.text
        return time.perf_counter() - started

    timed("known")  # warm up (the dummy hash is made on first use)
    timed("nobody")
    known = statistics.median(timed("known") for _ in range(7))
    unknown = statistics.median(timed(f"nobody-{i}") for i in range(7))
    # argon2 takes tens of milliseconds; without the dummy hash an unknown
    # user answered in a couple.
    assert unknown > 0.5 * known, f"known {known * 1000:.0f} ms, unknown {unknown * 1000:.0f} ms"


# --- enrollment and WebSockets -----------------------------------------------------------------


def test_enrollment_guesses_are_throttled_per_address(fleet: Fleet) -> None:
    server = fleet.start_server(extra_args=["--enroll-failures-per-ip", "5"])
    key = fleet.key()
    body: dict[str, Any] = {"provisioning_key": "efk_guess", "name": "guessed"}
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        codes = [anonymous.post("/api/v1/agent/enroll", json=body).status_code for _ in range(5)]
        assert codes == [401] * 5
        refused = anonymous.post("/api/v1/agent/enroll", json=body)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["error"]["field"] == "provisioning_key"
        assert "too many refused enrollments" in refused.json()["error"]["message"]
        # Even the right key waits its turn from this address; nothing is enrolled.
        right = anonymous.post("/api/v1/agent/enroll", json={**body, "provisioning_key": key})
        assert right.status_code == 429
    with server.http() as http:
        assert http.get("/api/v1/devices").json()["items"] == []


def test_an_oversized_websocket_message_closes_with_1009(fleet: Fleet) -> None:
    server = fleet.start_server(extra_args=["--max-websocket-message-bytes", "65536"])
    agent = fleet.start_agent("pi")
    device = agent.wait_enrolled()
    with server.http() as http:
        wait_for(lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"], 20)
    url = server.url.replace("http://", "ws://") + f"/api/v1/devices/{device}/exec/ws"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with connect(url, additional_headers=headers, max_size=None) as ws:
        ws.send(b"\x00" * 200_000)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    with server.http() as http:  # the server itself is fine
        assert http.get("/api/v1/health").status_code == 200


def test_open_streams_are_capped_per_user_and_per_device(fleet: Fleet) -> None:
    """A user cannot hold more event/log/exec streams than --max-streams-per-user,
    nor can anyone hold more than --max-streams-per-device on one device; the
    slot comes back when the stream ends."""
    server = fleet.start_server(
        extra_args=["--max-streams-per-user", "2", "--max-streams-per-device", "1"]
    )
    agent = fleet.start_agent("pi")
    device = agent.wait_enrolled()
    with server.http() as http:
        wait_for(lambda: http.get(f"/api/v1/devices/{device}").json()["is_online"], 20)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        first = http.send(http.build_request("GET", "/api/v1/events/stream"), stream=True)
        second = http.send(http.build_request("GET", "/api/v1/events/stream"), stream=True)
        assert first.status_code == second.status_code == 200
        third = http.get("/api/v1/events/stream")
        assert third.status_code == 429, third.text
        assert third.json()["error"]["field"] == "max_streams_per_user"
        assert "2 streams open" in third.json()["error"]["message"]
        second.close()

        def slot_back() -> bool:
            probe = http.send(http.build_request("GET", "/api/v1/events/stream"), stream=True)
            ok = probe.status_code == 200
            probe.close()
            return ok

        wait_for(slot_back, 10)
        first.close()

        url = server.url.replace("http://", "ws://") + f"/api/v1/devices/{device}/exec/ws"
        with (
            connect(url, additional_headers=headers),  # holds the device's one slot
            connect(url, additional_headers=headers) as refused,
            pytest.raises(ConnectionClosed) as closed,
        ):
            for _ in range(10):
                refused.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        assert "max_streams_per_device" in closed.value.rcvd.reason


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running, that is: a zombie (exited, not yet reaped by init) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_parsing_workers_die_with_a_killed_server(fleet: Fleet) -> None:
    """A server killed with SIGKILL runs no clean-up: its Compose-parsing
    processes must notice and exit, not linger holding memory."""
    server = fleet.start_server()
    with server.http() as http:
        checked = http.post("/api/v1/applications/validate", json={"compose": "services: {}"})
        assert checked.status_code in (200, 422)
    assert server.process is not None
    workers = wait_for(lambda: _children(server.process.pid), 20, what="parsing workers")
    assert len(workers) >= 1
    server.kill()
    deadline = time.monotonic() + 10
    while (left := [pid for pid in workers if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    names = [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in left]
    assert not left, f"still running 10 s after the server's SIGKILL: {names}"
