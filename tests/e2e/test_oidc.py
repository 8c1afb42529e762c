"""Institutional sign-in end to end: a real OpenID provider process
(``tests/support/oidc.py``), a real server, Chromium, and the CLI as a process.

What only these tests show: the redirects, cookies and forms line up in a
real browser; the provider's groups become project roles and follow the
provider from one sign-in to the next; ``edgefleet login --sso`` gets a
working API token through a browser without the token touching it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.browser import WIDE, Console, chromium, screenshot
from tests.support.oidc import ProviderProc, server_args, sign_in
from tests.support.procs import ServerProc

COMPOSE = "services:\n  hello:\n    image: localhost/hello:1\n"


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ProviderProc]:
    proc = ProviderProc(tmp_path)
    proc.start()
    yield proc
    proc.stop()


def _two_projects(server: ServerProc) -> None:
    """Projects lab-a and lab-b, each with an application and a job of its own."""
    with server.client() as admin:
        for project in ("lab-a", "lab-b"):
            admin.create_project(project)
            admin.create_application(f"app-{project}", "1", compose=COMPOSE, project=project)
            admin.create_job(f"app-{project}", version="1", selector={"site": project})


def _user(server: ServerProc, name: str) -> dict[str, object] | None:
    with server.client() as admin:
        return next((u for u in admin.users() if u["name"] == name), None)


def test_portal_sign_in_in_chromium(fleet: Fleet, provider: ProviderProc) -> None:
    """The provider's group grants a role in lab-a: the new user sees lab-a's
    devices, applications and jobs, and nothing of lab-b's."""
    from playwright.sync_api import expect

    server = fleet.start_server(extra_args=server_args(provider, "physics=lab-a:developer"))
    fleet.procs.append(provider)
    _two_projects(server)
    agents = [fleet.start_agent(f"dev-{p}", key=fleet.key(p)) for p in ("lab-a", "lab-b")]
    provider.set_user("alice", preferred_username="alice", groups=["physics", "chem"])
    for agent in agents:
        agent.wait_enrolled()
    assert _user(server, "alice") is None

    with chromium() as browser:
        context = browser.new_context(viewport=WIDE)
        console = Console(context, origin=server.url)
        page = context.new_page()
        page.goto(f"{server.url}/apps")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        page.get_by_role("link", name="Sign in with your institution").click()
        expect(page).to_have_url(re.compile(rf"^{provider.issuer}/oauth2/authorize"))
        page.fill("input[name=sub]", "alice")
        page.get_by_role("button", name="Authorize").click()
        expect(page).to_have_url(f"{server.url}/apps")
        expect(page.locator("main")).to_contain_text("app-lab-a")
        expect(page.locator("main")).not_to_contain_text("app-lab-b")
        screenshot(page, "oidc-signed-in-apps")
        page.goto(f"{server.url}/jobs")
        expect(page.locator("main")).to_contain_text("app-lab-a")
        expect(page.locator("main")).not_to_contain_text("app-lab-b")
        page.goto(f"{server.url}/devices")
        expect(page.locator("main")).to_contain_text("dev-lab-a")
        expect(page.locator("main")).not_to_contain_text("dev-lab-b")
        console.check()

    alice = _user(server, "alice")
    assert alice is not None, "the first sign-in creates the user"
    assert alice["projects"] == {"lab-a": "developer"}
    assert alice["has_password"] is False
    assert alice["identity_provider"] == provider.issuer


def test_roles_follow_the_provider_at_every_sign_in(
    database_url: str | None, fleet: Fleet, provider: ProviderProc
) -> None:
    """Groups added and removed at the provider change the roles at the next
    sign-in; memberships in projects the map does not name are left alone.
    On SQLite and PostgreSQL."""
    role_map = "physics=lab-a:developer,ops=lab-a:operator,ops=lab-b:viewer"
    server = fleet.start_server(extra_args=server_args(provider, role_map))
    fleet.procs.append(provider)
    _two_projects(server)

    provider.set_user("bob", preferred_username="bob", groups=["physics", "ops"])
    _sign_in_once(server, provider, "bob")
    assert _projects(server, "bob") == {"lab-a": "operator", "lab-b": "viewer"}
    with server.client() as admin:
        admin.add_member("default", "bob", "viewer")  # by hand: not the map's business

    provider.set_user("bob", preferred_username="bob", groups=["physics"])
    _sign_in_once(server, provider, "bob")
    assert _projects(server, "bob") == {"lab-a": "developer", "default": "viewer"}

    provider.set_user("bob", preferred_username="bob", groups=[])
    browser, landing = sign_in(server.url, provider, "bob")
    try:
        assert landing.status_code == 303  # still a viewer of default (given by hand)
        assert _projects(server, "bob") == {"default": "viewer"}
        gone = browser.get("/apps")
        assert gone.status_code == 200 and "app-lab-a" not in gone.text
    finally:
        browser.close()
    assert len([u for u in _users(server) if u.startswith("bob")]) == 1, "one user per subject"


def _sign_in_once(server: ServerProc, provider: ProviderProc, sub: str) -> None:
    browser, landing = sign_in(server.url, provider, sub)
    browser.close()
    assert landing.status_code == 303, landing.text[:500]


def _users(server: ServerProc) -> list[str]:
    with server.client() as admin:
        return [str(u["name"]) for u in admin.users()]


def _projects(server: ServerProc, name: str) -> dict[str, str]:
    user = _user(server, name)
    assert user is not None
    projects = user["projects"]
    assert isinstance(projects, dict)
    return projects


def test_cli_login_sso(fleet: Fleet, provider: ProviderProc, tmp_path: Path) -> None:
    """``edgefleet login --sso`` as a process; the browser's part is plain HTTP
    against the provider's form. The saved token works, and is the user's."""
    server = fleet.start_server(extra_args=server_args(provider, "physics=lab-a:viewer"))
    fleet.procs.append(provider)
    _two_projects(server)
    provider.set_user("carol", preferred_username="carol", groups=["physics"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    cli = subprocess.Popen(
        [sys.executable, "-m", "edgefleet", "login", "--sso", "--no-browser", "-s", server.url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert cli.stdout is not None
        url = ""
        for line in cli.stdout:
            found = re.search(r"(http://\S+/auth/oidc/cli\?\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the CLI prints the URL to open"
        with httpx.Client(timeout=30) as browser:
            start = browser.get(url)
            back = browser.get(provider.authorize(start.headers["location"], "carol"))
            assert back.status_code == 303
            loopback = back.headers["location"]
            assert loopback.startswith("http://127.0.0.1:") and "token" not in loopback
            assert browser.get(loopback).status_code == 200
        out, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(10)
    assert cli.returncode == 0, err
    assert f"logged in to {server.url} as carol" in out
    saved = (tmp_path / "config" / "edgefleet" / "cli.json").read_text()
    token = re.search(r'"token": "([^"]+)"', saved)
    assert token is not None
    assert (tmp_path / "config" / "edgefleet" / "cli.json").stat().st_mode & 0o077 == 0
    me = subprocess.run(
        [sys.executable, "-m", "edgefleet", "apps", "list", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert me.returncode == 0, me.stderr
    assert "app-lab-a" in me.stdout and "app-lab-b" not in me.stdout


def test_the_providers_key_rotation_is_followed(tmp_path: Path) -> None:
    """The provider restarts with a new signing key (as a rotation): a verifier that
    cached the old key set reads it again for the unknown key id, and accepts."""
    import asyncio

    from edgefleet.server.auth.oidc_config import OidcConfig
    from edgefleet.server.auth.oidc_provider import OidcProvider
    from tests.support.oidc import CLIENT_ID

    first = ProviderProc(tmp_path, name="oidc-1")
    first.start()
    config = OidcConfig(
        issuer=first.issuer,
        client_id=CLIENT_ID,
        client_secret=None,
        scopes=("openid",),
        groups_claim="groups",
        username_claim="preferred_username",
        jwks_refresh_seconds=0,
    )
    second = ProviderProc(tmp_path, name="oidc-2", port=first.port)

    async def run() -> list[str]:
        oidc = OidcProvider(config)
        try:
            subjects = [(await oidc.verify_id_token(first.id_token("pat", nonce="a"), "a")).subject]
            first.stop()
            second.start()
            token = second.id_token("pat", nonce="b")
            subjects.append((await oidc.verify_id_token(token, "b")).subject)
            return subjects
        finally:
            await oidc.close()

    try:
        old_kid = httpx.get(f"{first.issuer}/jwks").json()["keys"][0]["kid"]
        assert asyncio.run(run()) == ["pat", "pat"]
        assert httpx.get(f"{second.issuer}/jwks").json()["keys"][0]["kid"] != old_kid
    finally:
        first.stop()
        second.stop()


def test_cli_login_sso_with_a_device_code(fleet: Fleet, tmp_path: Path) -> None:
    """The provider announces device sign-in: ``edgefleet login --sso --device``
    shows a code, the user approves it at the provider (plain HTTP here), and
    the CLI gets its token by polling; the handle is good once."""
    provider = ProviderProc(tmp_path, device=True, name="oidc-device")
    provider.start()
    fleet.procs.append(provider)
    server = fleet.start_server(extra_args=server_args(provider, "physics=lab-a:viewer"))
    _two_projects(server)
    provider.set_user("dora", preferred_username="dora", groups=["physics"])
    with server.client() as anyone:
        assert anyone.oidc_info()["device_flow"] is True
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    cli = subprocess.Popen(
        [sys.executable, "-m", "edgefleet", "login", "--sso", "--device", "-s", server.url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert cli.stdout is not None
        user_code = ""
        for line in cli.stdout:
            found = re.search(r"enter the code\s+(\S+)", line)
            if found:
                user_code = found.group(1)
                break
        assert user_code, "the CLI shows the code to enter"
        approved = httpx.post(
            f"{provider.issuer}/device", data={"user_code": user_code, "sub": "dora"}, timeout=10
        )
        assert approved.status_code == 200, approved.text
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(10)
    assert cli.returncode == 0, err
    assert f"logged in to {server.url} as dora" in out
    listed = subprocess.run(
        [sys.executable, "-m", "edgefleet", "apps", "list", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "app-lab-a" in listed.stdout and "app-lab-b" not in listed.stdout
    with httpx.Client(base_url=server.url, timeout=30) as anyone:
        unknown = anyone.post("/api/v1/auth/oidc/device/token", json={"handle": "x" * 43})
        assert unknown.status_code == 401
