"""Attacks on who a caller is: a device posing under prod labels, a stolen
token changing its owner's password, ``edgefleet up`` piling up admin tokens,
a forged ``X-Forwarded-For``, and a NATS bus anyone could join."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.cluster import NatsProc
from tests.support.procs import Proc, ServerProc, base_env, free_port, wait_for

pytestmark = pytest.mark.timeout(240)


# -- labels --------------------------------------------------------------------------------


def test_agent_cannot_override_its_keys_labels(fleet: Fleet) -> None:
    server = fleet.start_server()
    key = fleet.key(labels={"tier": "test"})
    with server.client() as admin:
        admin.create_application(
            "prod-app",
            "1",
            compose='services:\n  x:\n    x-edgefleet-runtime: process\n    command: ["sleep", "600"]\n',
        )
        prod_job = admin.create_job("prod-app", selector={"tier": "prod"})["id"]

    liar = fleet.start_agent("liar", key=key, labels={"tier": "prod"})
    assert liar.wait(30) != 0
    assert "label 'tier' is set by the provisioning key to 'test'" in liar.log()
    assert not (liar.state_dir / "device.json").exists()
    with server.http() as http:
        assert http.get("/api/v1/devices").json()["items"] == []
        refused = http.post(
            "/api/v1/agent/enroll",
            json={"provisioning_key": key, "labels": {"tier": "prod"}, "facts": {}},
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "labels.tier"
        assert refused.json()["error"]["labels"] == ["tier"]

    # Adding labels of its own is fine; the key's stay as the key says.
    honest = fleet.start_agent("honest", key=key, labels={"site": "home", "tier": "test"})
    device = honest.wait_enrolled()
    with server.client() as admin:
        assert admin.device(device)["labels"] == {"tier": "test", "site": "home"}
        time.sleep(2)  # a selector job follows new devices at once; give it the chance
        job = admin.job(prod_job)
        assert all(d["device"] != device for d in job["devices"]), job


# -- password change -------------------------------------------------------------------------


def _portal_session(url: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    signed = client.post(
        "/login",
        data={
            "csrf": csrf.group(1),
            "next": "/",
            "method": "password",
            "username": name,
            "password": password,
        },
    )
    assert signed.status_code in (302, 303), signed.text[:500]
    assert client.get("/api/v1/users/me").json()["name"] == name
    return client


def test_password_change_needs_the_current_password(fleet: Fleet) -> None:
    server = fleet.start_server()
    with server.client() as admin:
        admin.create_user("pat", password="old password 1")
        token = admin.create_token("pat's", user="pat")["token"]
    browser = _portal_session(server.url, "pat", "old password 1")
    url = "/api/v1/users/me/password"
    with server.http(token) as http:
        missing = http.put(url, json={"password": "new password 2"})
        assert missing.status_code == 422
        assert missing.json()["error"]["field"] == "current_password"
        wrong = http.put(url, json={"password": "new password 2", "current_password": "guess"})
        assert wrong.status_code == 403
        assert wrong.json()["error"]["field"] == "current_password"
        assert "current password is wrong" in wrong.json()["detail"]
        # Nothing changed: the old password still signs in, the session still works.
        assert browser.get("/api/v1/users/me").status_code == 200
        _portal_session(server.url, "pat", "old password 1").close()

        changed = http.put(
            url, json={"password": "new password 2", "current_password": "old password 1"}
        )
        assert changed.status_code == 204
        # Other portal sessions ended; the API token that made the change still works.
        assert browser.get("/api/v1/users/me").status_code == 401
        assert http.get("/api/v1/users/me").status_code == 200
    browser.close()
    _portal_session(server.url, "pat", "new password 2").close()
    # The CLI: a wrong current password is refused in one line, the right one works.
    cli = [sys.executable, "-m", "edgefleet", "--server", server.url, "--token", token]
    passwd = [*cli, "users", "passwd", "--password", "cli password 4"]
    wrong_cli = subprocess.run(
        [*passwd, "--current-password", "nope"], capture_output=True, text=True, timeout=60
    )
    assert wrong_cli.returncode == 1
    assert "current password is wrong" in wrong_cli.stderr
    assert "Traceback" not in wrong_cli.stderr
    right_cli = subprocess.run(
        [*passwd, "--current-password", "new password 2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert right_cli.returncode == 0, right_cli.stderr
    assert "password of pat set" in right_cli.stdout
    _portal_session(server.url, "pat", "cli password 4").close()
    # A non-admin cannot touch someone else's password (it does not exist for them).
    with server.http(token) as http:
        assert (
            http.put(
                "/api/v1/users/admin/password",
                json={"password": "hijacked pw", "current_password": "x"},
            ).status_code
            == 404
        )
    # An administrator resets another user's password without knowing it.
    with server.http() as http:
        assert (
            http.put("/api/v1/users/pat/password", json={"password": "reset pw 3"}).status_code
            == 204
        )
    _portal_session(server.url, "pat", "reset pw 3").close()


# -- edgefleet up ----------------------------------------------------------------------------


def _up_once(tmp_path: Path) -> str:
    """One ``edgefleet up`` on the shared data dir, on a port of its own: a port
    reused across restarts can be taken by another test's server meanwhile."""
    port = free_port()
    env = base_env(XDG_CONFIG_HOME=str(tmp_path / "config"))
    log = tmp_path / f"up-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgefleet",
                "up",
                "--no-demo",
                "--data-dir",
                str(tmp_path / "data"),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for(lambda: "Press Ctrl-C" in log.read_text(), 60, what="up ready")
        token = log.read_text().split("admin token:", 1)[1].split()[0]
        up.send_signal(signal.SIGINT)
        assert up.wait(30) == 0
        return token
    finally:
        if up.poll() is None:
            up.kill()


def _tokens(tmp_path: Path, token: str) -> list[dict[str, object]]:
    server = ServerProc(tmp_path, name="data")
    server.env.pop("EDGEFLEET_ADMIN_TOKEN", None)
    server.start()
    try:
        with server.http(token) as http:
            items: list[dict[str, object]] = http.get("/api/v1/tokens").json()["items"]
            return items
    finally:
        server.stop()


def test_up_reuses_its_saved_login(tmp_path: Path) -> None:
    first = _up_once(tmp_path)
    second = _up_once(tmp_path)
    assert second == first
    saved = tmp_path / "data" / "up-login.json"
    assert saved.stat().st_mode & 0o077 == 0
    tokens = _tokens(tmp_path, first)
    assert [t["name"] for t in tokens if t["revoked_at"] is None] == ["bootstrap"]

    # Revoked: the next start mints one, named so, and reuses that one afterwards.
    with httpx.Client(timeout=30) as http:
        server = ServerProc(tmp_path, name="data")
        server.env.pop("EDGEFLEET_ADMIN_TOKEN", None)
        server.start()
        try:
            own = next(t for t in tokens if t["name"] == "bootstrap")
            revoked = http.delete(
                f"{server.url}/api/v1/tokens/{own['id']}",
                headers={"Authorization": f"Bearer {first}"},
            )
            assert revoked.status_code == 200, revoked.text
        finally:
            server.stop()
    third = _up_once(tmp_path)
    fourth = _up_once(tmp_path)
    assert third != first and fourth == third
    live = [t for t in _tokens(tmp_path, third) if t["revoked_at"] is None]
    assert len(live) == 1 and "(saved login revoked)" in str(live[0]["name"])


# -- proxy headers ---------------------------------------------------------------------------


def _wrong_logins(server: ServerProc, forged: bool) -> list[int]:
    codes = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for n in range(5):
            form = client.get("/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf is not None
            headers = {"X-Forwarded-For": f"203.0.113.{n + 1}"} if forged else {}
            codes.append(
                client.post(
                    "/login",
                    data={
                        "csrf": csrf.group(1),
                        "next": "/",
                        "method": "password",
                        "username": f"nobody{n}",
                        "password": "wrong password",
                    },
                    headers=headers,
                ).status_code
            )
    return codes


def test_forwarded_headers_trusted_only_from_configured_proxies(fleet: Fleet) -> None:
    # Only 10.9.9.9 is a proxy: our loopback client is not, so its header is ignored
    # and the sign-in throttle keys on the real address.
    server = fleet.start_server(
        extra_args=["--forwarded-allow-ips", "10.9.9.9", "--login-failures-per-ip", "3"]
    )
    codes = _wrong_logins(server, forged=True)
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429], codes
    log = server.log()
    assert "203.0.113." not in log
    assert re.search(r"127\.0\.0\.1:\d+ - \"POST /login", log)

    # Control: from a configured proxy (loopback, the default) the header is believed.
    trusting = fleet.start_server(name="trusting", extra_args=["--login-failures-per-ip", "3"])
    codes = _wrong_logins(trusting, forged=True)
    assert 429 not in codes, codes
    assert '203.0.113.5:0 - "POST /login' in trusting.log()

    refused = subprocess.run(
        [sys.executable, "-m", "edgefleet", "server", "--forwarded-allow-ips", "10.0.0.1/8"],
        capture_output=True,
        text=True,
        env=base_env(),
        timeout=60,
    )
    assert refused.returncode == 2
    assert "'10.0.0.1/8' is not an IP address or network" in refused.stderr
    assert "Traceback" not in refused.stderr


# -- NATS ------------------------------------------------------------------------------------


class AuthNats(NatsProc):
    """A nats-server that wants a user and password."""

    def __init__(self, workdir: Path, user: str, password: str) -> None:
        super().__init__(workdir)
        self.argv += ["--user", user, "--pass", password]


def test_nats_with_credentials(tmp_path: Path) -> None:
    nats = AuthNats(tmp_path, "edge", "s3cret-bus")
    nats.start()
    procs: list[Proc] = [nats]
    try:
        authed = f"nats://edge:s3cret-bus@127.0.0.1:{nats.port}"
        server = ServerProc(tmp_path, extra_args=["--bus", authed])
        procs.append(server)
        server.start()
        with server.http() as http:
            assert http.get("/api/v1/health").json()["bus"] == "nats"
        assert "s3cret-bus" not in server.log()

        for name, bus, why in [
            ("anonymous", nats.url, "refused our credentials"),
            ("wrong", f"nats://edge:guess@127.0.0.1:{nats.port}", "refused our credentials"),
        ]:
            bad = ServerProc(tmp_path, name=name, extra_args=["--bus", bus])
            bad.start(wait=False)
            assert bad.wait(30) == 2
            log = bad.log()
            assert why in log and "Traceback" not in log and "guess" not in log
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"{bad.url}/api/v1/health", timeout=2)
    finally:
        for proc in reversed(procs):
            proc.stop()
