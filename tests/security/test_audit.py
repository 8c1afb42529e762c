"""Who reads what, and that every change leaves a trace: job environments are
write-only below operator, exec argv is for operators, every change is an
event, failed sign-ins are for admins only, and the portal's Audit page
filters the log. Real server processes (and a real agent where devices
matter); users sign in through the portal's own form."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from edgefleet.client import Client
from tests.conftest import Fleet
from tests.support.procs import AgentProc, ServerProc, wait_for

PASSWORD = "correct-horse-battery"
SLEEPER = {
    "services": {"probe": {"x-edgefleet-runtime": "process", "command": ["sleep", "100000"]}}
}


def user_with_role(server: ServerProc, name: str, role: str | None) -> str:
    """A user (with a portal password) and an API token for them."""
    with server.client() as admin:
        admin.create_user(name, password=PASSWORD)
        if role:
            admin.add_member("default", name, role)
        return str(admin.create_token(f"{name}-token", user=name)["token"])


def events(server: ServerProc, token: str | None = None, **params: str) -> list[dict[str, Any]]:
    with server.http(token) if token else server.http() as http:
        response = http.get("/api/v1/events", params={"limit": 1000, **params})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@contextmanager
def sign_in(server: ServerProc, name: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """A cookie-keeping client after the portal's sign-in form (any answer)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/login")
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match is not None
        form = {"csrf": match.group(1), "username": name, "password": password}
        client.post("/login", data=form)
        yield client


def attempt(server: ServerProc, name: str, password: str = PASSWORD) -> None:
    with sign_in(server, name, password):
        pass


@pytest.fixture
def server(fleet: Fleet) -> ServerProc:
    return fleet.start_server()


def test_job_environment_is_write_only_below_operator(server: ServerProc) -> None:
    tokens = {
        role: user_with_role(server, role, role) for role in ("viewer", "developer", "operator")
    }
    with server.client() as admin:
        admin.create_application("probe", "1", spec=SLEEPER)
        job = admin.create_job(
            "probe", selector={"nothing": "here"}, environment={"API_KEY": "s3cret", "MODE": "a"}
        )["id"]
    masked = {"API_KEY": "***", "MODE": "***"}
    for role in ("viewer", "developer"):
        with Client(server.url, tokens[role]) as client:
            assert client.job(job)["environment"] == masked, role
            assert [j["environment"] for j in client.jobs()] == [masked], role
    with Client(server.url, tokens["operator"]) as operator:
        assert operator.job(job)["environment"] == {"API_KEY": "s3cret", "MODE": "a"}

    # A developer round-trips what they see, changing one value: the secret stays.
    with server.http(tokens["developer"]) as http:
        sent = {"API_KEY": "***", "MODE": "b"}
        answer = http.patch(f"/api/v1/jobs/{job}", json={"environment": sent})
        assert answer.status_code == 200, answer.text
        assert answer.json()["environment"] == masked
    with Client(server.url, tokens["operator"]) as operator:
        assert operator.job(job)["environment"] == {"API_KEY": "s3cret", "MODE": "b"}

    # The portal shows the viewer what the API does.
    with sign_in(server, "viewer") as portal:
        page = portal.get(f"/jobs/{job}")
        assert page.status_code == 200
        assert "API_KEY" in page.text and "***" in page.text and "s3cret" not in page.text


def test_exec_argv_only_for_operators(fleet: Fleet, server: ServerProc) -> None:
    device = fleet.start_agent("box").wait_enrolled()
    viewer = user_with_role(server, "viewer", "viewer")
    developer = user_with_role(server, "developer", "developer")
    operator = user_with_role(server, "operator", "operator")
    with server.http(operator) as http:
        ran = http.post(
            f"/api/v1/devices/{device}/exec",
            json={"command": ["echo", "hunter2-in-argv"], "timeout": 20},
        )
        assert ran.status_code == 200, ran.text
        assert ran.json()["exit_code"] == 0

    def finished() -> list[dict[str, Any]]:
        return events(server, viewer, kind="exec.finished")

    wait_for(finished, 10, what="exec.finished event")
    for token in (viewer, developer):
        seen = events(server, token, kind="exec")
        assert len(seen) == 1 and seen[0]["actor"] == "operator"
        assert "command" not in seen[0]["data"] and seen[0]["data"]["hidden"] == ["command"]
        assert "hunter2" not in str(seen) and "hunter2" not in str(finished())
        assert finished()[0]["data"]["exit_code"] == 0
        with server.http(token) as http:
            audit = http.get("/api/v1/audit/exec").json()["items"]
            assert audit[0]["command"] is None and audit[0]["exit_code"] == 0
    mine = events(server, operator, kind="exec")
    assert mine[0]["data"]["command"] == ["echo", "hunter2-in-argv"]
    with server.http(operator) as http:
        audit = http.get("/api/v1/audit/exec").json()["items"]
        assert audit[0]["command"] == ["echo", "hunter2-in-argv"]
        # One exec, one row, complete when the 200 came (issue 16 merged its writes).
        assert len(audit) == 1 and audit[0]["user"] == "operator"
        assert audit[0]["device"] == device and audit[0]["finished_at"] is not None
        assert audit[0]["exit_code"] == 0 and audit[0]["interactive"] is False
        assert audit[0]["id"] == mine[0]["data"]["exec"] == finished()[0]["data"]["exec"]


def test_every_change_is_audited(fleet: Fleet, server: ServerProc, tmp_path: Any) -> None:
    agent = fleet.start_agent("box")
    device = agent.wait_enrolled()
    admin = server.client()
    state: dict[str, Any] = {}

    def new_policy() -> None:
        agent.stop()
        again = AgentProc(
            tmp_path, [server.url], key=None, name="box", extra_args=["--allow-published-ports"]
        )
        fleet.procs.append(again)
        again.start()

    def refused_job() -> None:
        container = {"services": {"web": {"image": "localhost/none:1"}}}
        admin.create_application("needs-docker", "1", spec=container)
        admin.create_job("needs-docker", devices=[device])

    actions: list[tuple[str, Callable[[], object]]] = [
        ("user.created", lambda: admin.create_user("ursula", password=PASSWORD)),
        ("user.password_changed", lambda: admin.set_password("ursula", PASSWORD + "!")),
        ("token.created", lambda: state.update(token=admin.create_token("t", user="ursula"))),
        ("token.revoked", lambda: admin.revoke_token(state["token"]["id"])),
        ("member.added", lambda: admin.add_member("default", "ursula", "viewer")),
        ("member.changed", lambda: admin.add_member("default", "ursula", "operator")),
        ("member.removed", lambda: admin.remove_member("default", "ursula")),
        ("key.created", lambda: state.update(key=admin.create_key("default"))),
        ("key.revoked", lambda: admin.revoke_key(state["key"]["id"])),
        ("project.created", lambda: admin.create_project("side")),
        ("project.deleted", lambda: admin.delete_project("side")),
        ("user.deleted", lambda: admin.delete_user("ursula")),
        ("login.succeeded", lambda: attempt(server, "admin")),
        ("device.policy_changed", new_policy),
        ("job.refused", refused_job),
    ]
    admin.set_password("admin", PASSWORD)
    for kind, action in actions:
        before = len(events(server, kind=kind))
        action()

        def recorded(kind: str = kind, before: int = before) -> list[dict[str, Any]]:
            found = events(server, kind=kind)
            return found if len(found) > before else []

        found = wait_for(recorded, 20, what=f"a {kind} event")[-1]
        assert found["message"], kind
        if kind.startswith(("user.", "token.", "member.", "key.", "project.", "login.")):
            assert found["actor"] == "admin", (kind, found)
        if kind in ("device.policy_changed", "job.refused"):
            assert found["device"] == device, (kind, found)
        if kind == "device.policy_changed":
            assert "published_ports" in str(found["data"]["changed"]), found
        if kind == "job.refused":
            assert "cannot run here" in found["message"], found
    admin.close()


@pytest.fixture
def people(server: ServerProc) -> Iterator[dict[str, str]]:
    yield {
        "owner": user_with_role(server, "olga", "owner"),
        "viewer": user_with_role(server, "vic", "viewer"),
        "outsider": user_with_role(server, "oscar", None),
    }


def test_failed_sign_in_is_for_admins_and_the_audit_page_filters(
    server: ServerProc, people: dict[str, str]
) -> None:
    with server.client() as admin:
        admin.set_password("admin", PASSWORD)
    attempt(server, "admin", "wrong-password-1")
    failed = wait_for(lambda: events(server, kind="login.failed"), 10, what="login.failed")
    assert len(failed) == 1 and failed[0]["project"] is None
    assert failed[0]["data"] == {"username": "admin", "client": "127.0.0.1"}
    assert "wrong-password-1" not in str(failed)
    for who in ("owner", "viewer", "outsider"):
        assert events(server, people[who], kind="login.failed") == [], who
        assert events(server, people[who], kind="user.created") == [], who
    # Membership events of the project: its owner sees them, a viewer does not.
    assert any(
        e["data"]["user"] == "vic" for e in events(server, people["owner"], kind="member.added")
    )
    assert events(server, people["viewer"], kind="member.added") == []

    with sign_in(server, "admin") as portal:
        page = portal.get("/audit", params={"kind": "login.failed"})
        assert page.status_code == 200, page.text
        assert 'href="/audit"' in page.text  # the nav link
        kinds = re.findall(r'<tr data-kind="([^"]+)"', page.text)
        assert kinds == ["login.failed"]
        assert "failed sign-in as &#39;admin&#39; from 127.0.0.1" in page.text
        everything = portal.get("/audit", params={"actor": "admin"})
        assert {"user.created", "member.added"} <= set(
            re.findall(r'<tr data-kind="([^"]+)"', everything.text)
        )
        bad = portal.get("/audit", params={"since": "yesterday"})
        assert bad.status_code == 400 and "since: not a date and time" in bad.text
        empty = portal.get("/audit", params={"until": "2000-01-01T00:00"})
        assert re.findall(r'<tr data-kind="([^"]+)"', empty.text) == []
    with sign_in(server, "olga") as portal:
        page = portal.get("/audit")
        kinds = re.findall(r'<tr data-kind="([^"]+)"', page.text)
        assert page.status_code == 200 and "member.added" in kinds
        assert not {k for k in kinds if k.startswith(("login.", "user."))}
    with sign_in(server, "vic") as portal:
        page = portal.get("/audit")
        assert page.status_code == 403 and "administrators and project owners" in page.text
        assert 'href="/audit"' not in portal.get("/").text
