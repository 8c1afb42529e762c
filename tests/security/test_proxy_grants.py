"""The proxy remembers a request's admission for a moment (issue 16,
server/proxy/grants.py); a revoked right must still be refused at once.

The server re-checks open streams only every 60 s here, so a grant lives its
longest (5 s, the instance touch interval): each refusal below comes from the
grant being forgotten or bounded, not from it having aged out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.procs import ServerProc, free_port, kill_process_workloads, stop_all, wait_for

pytestmark = pytest.mark.slow

PYTHON = "/usr/bin/python3"  # process services may run as another user (nobody)


@dataclass
class App:
    server: ServerProc
    path: str  # /proxy/<job>/<device>/web/<port>


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    workdir = tmp_path_factory.mktemp("proxy-grants")
    fleet = Fleet(workdir, None)
    try:
        server = fleet.start_server(extra_args=["--stream-recheck-interval", "60"])
        device = fleet.start_agent("pi", runtime="process").wait_enrolled()
        port = free_port()
        serve = "import http.server as h, sys; h.test(h.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind='127.0.0.1')"
        spec = {
            "services": {
                "web": {
                    "x-edgefleet-runtime": "process",
                    "command": [PYTHON, "-c", serve, str(port)],
                    "expose": [str(port)],
                }
            }
        }
        with server.client() as client:
            client.create_application("site", "1", spec=spec)
            job = client.create_job("site", devices=[device])["id"]
        path = f"/proxy/{job}/{device}/web/{port}/"
        with server.http() as http:
            wait_for(lambda: http.get(path).status_code == 200, 60, what="the app serving")
        yield App(server, path)
    finally:
        stop_all(fleet.procs)
        kill_process_workloads(workdir)


def member(app: App, name: str, role: str = "viewer", **token: int) -> tuple[str, str]:
    """A new user with ``role`` in the default project: (token id, secret)."""
    with app.server.client() as client:
        client.create_user(name)
        client.add_member("default", name, role)
        created = client.create_token(name, user=name, **token)
    return str(created["id"]), str(created["token"])


def get(app: App, secret: str) -> httpx.Response:
    with httpx.Client(base_url=app.server.url, timeout=30) as http:
        return http.get(app.path, headers={"Authorization": f"Bearer {secret}"})


def test_a_revoked_token_is_refused_on_its_next_request(app: App) -> None:
    token_id, secret = member(app, "revoked")
    assert get(app, secret).status_code == 200
    assert get(app, secret).status_code == 200  # admitted by its grant
    with app.server.client() as client:
        client.revoke_token(token_id)
    refused = get(app, secret)
    assert refused.status_code == 401, refused.text
    assert "revoked" in refused.json()["detail"]


def test_a_member_taken_out_is_refused_on_the_next_request(app: App) -> None:
    _, secret = member(app, "leaver")
    assert get(app, secret).status_code == 200
    with app.server.client() as client:
        client.remove_member("default", "leaver")
    assert get(app, secret).status_code == 404  # the job is no longer theirs to see


def test_a_deleted_user_is_refused_on_the_next_request(app: App) -> None:
    _, secret = member(app, "deleted")
    assert get(app, secret).status_code == 200
    with app.server.client() as client:
        client.delete_user("deleted")
    assert get(app, secret).status_code == 401


def test_no_grant_outlives_its_token(app: App) -> None:
    _, secret = member(app, "brief", expires_in=3)
    created = time.monotonic()
    assert get(app, secret).status_code == 200
    while time.monotonic() - created < 3.5:  # keep the grant in use
        time.sleep(0.2)
        get(app, secret)
    refused = get(app, secret)
    assert refused.status_code == 401, refused.text
    assert "expired" in refused.json()["detail"]


def test_a_token_sent_as_a_cookie_is_judged_as_one(app: App) -> None:
    """An API token admitted as a bearer token is no portal session nor app
    cookie: sent as either, the grant it earned does not apply."""
    _, secret = member(app, "cookies")
    assert get(app, secret).status_code == 200
    for cookie in ("edgefleet_session", "edgefleet_app"):
        with httpx.Client(base_url=app.server.url, timeout=30) as http:
            http.cookies.set(cookie, secret)
            refused = http.get(app.path)
        assert refused.status_code == 401, (cookie, refused.text)
