"""The portal's doors, over plain HTTP (no browser): sign-in failures, the
session cookie, CSRF refusals, redirects to sign in, and a few pure helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from edgefleet.server.auth.secrets import csrf_token
from edgefleet.server.portal.apps import annotate
from edgefleet.server.portal.devices import diff_patch
from edgefleet.server.portal.web import parse_pairs, safe_next
from tests.conftest import Fleet
from tests.support.procs import ServerProc

PASSWORD = "correct-horse-battery"


@pytest.fixture
def server(fleet: Fleet) -> ServerProc:
    server = fleet.start_server()
    with server.client() as client:
        client.set_password("admin", PASSWORD)
    return server


@pytest.fixture
def browser(server: ServerProc) -> Iterator[httpx.Client]:
    """A cookie-keeping client that does not follow redirects."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def login_csrf(client: httpx.Client) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def sign_in(client: httpx.Client, password: str = PASSWORD, **extra: str) -> httpx.Response:
    form = {"csrf": login_csrf(client), "username": "admin", "password": password}
    form.update(extra)
    return client.post("/login", data=form)


def test_pages_send_strangers_to_sign_in(browser: httpx.Client) -> None:
    response = browser.get("/jobs/j123?tab=logs")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fjobs%2Fj123%3Ftab%3Dlogs"
    # Fragments and the live stream answer 401, and htmx is told where to go.
    assert browser.get("/portal/live").status_code == 401
    hx = browser.get(
        "/portal/fragments/devices",
        headers={"HX-Request": "true", "HX-Current-URL": "http://x/devices?online=yes"},
    )
    assert hx.headers["HX-Redirect"] == "/login?next=%2Fdevices%3Fonline%3Dyes"


def test_sign_in_failures_set_no_session(browser: httpx.Client) -> None:
    for attempt in (
        sign_in(browser, "wrong-password"),
        sign_in(browser, PASSWORD, username="nobody"),
        sign_in(browser, "", method="token", token="eft_not-a-real-token"),
    ):
        assert attempt.status_code == 200
        assert "edgefleet_session" not in attempt.headers.get("set-cookie", "")
        assert "alert error" in attempt.text
    assert "wrong username or password" in sign_in(browser, "wrong-password").text
    # Without the sign-in form's own token (a foreign page posting it): refused.
    forged = browser.post(
        "/login", data={"csrf": "forged", "username": "admin", "password": PASSWORD}
    )
    assert "edgefleet_session" not in forged.headers.get("set-cookie", "")
    assert "expired" in forged.text
    assert browser.get("/").status_code == 303


def test_session_cookie_and_safe_redirects(browser: httpx.Client, server: ServerProc) -> None:
    response = sign_in(browser, next="//evil.example/steal")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("edgefleet_session=")
    )
    attributes = cookie.lower()
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    page = browser.get("/")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    # An API token signs in too, as a fresh session (the token is never the cookie).
    with server.client() as client:
        token = client.create_token("portal")["token"]
    with httpx.Client(base_url=server.url, timeout=30) as other:
        signed = sign_in(other, "", method="token", token=token, next="/devices")
        assert signed.headers["location"] == "/devices"
        assert other.cookies["edgefleet_session"] != token


def test_every_form_needs_the_csrf_token(browser: httpx.Client, server: ServerProc) -> None:
    sign_in(browser)
    session = browser.cookies["edgefleet_session"]
    good = csrf_token(session)
    for form in ({}, {"csrf": "0" * 40}, {"csrf": csrf_token("eft_someone-elses-session")}):
        refused = browser.post("/keys", data={**form, "project": "default", "name": "x"})
        assert refused.status_code == 403, refused.text
        assert "stale or came from another site" in refused.text
    for path in ("/logout", "/projects", "/tokens", "/jobs", "/apps"):
        assert browser.post(path, data={"csrf": "nope"}).status_code == 403, path
    assert browser.get("/").status_code == 200  # the refused sign-out did nothing
    with server.http() as admin:
        keys = admin.get("/api/v1/provisioning-keys").json()["items"]
    assert [k for k in keys if k["name"] == "x"] == []

    # The right token works, in the form or (htmx) in the header.
    created = browser.post("/keys", data={"csrf": good, "project": "default", "name": "x"})
    assert created.status_code == 303
    shown = browser.get("/keys")
    assert "Key created" in shown.text and "edgefleet agent --server" in shown.text
    assert "Key created" not in browser.get("/keys").text  # shown once
    checked = browser.post(
        "/portal/fragments/validate",
        data={"compose": "services:\n  web:\n    image: x\n    bogus: 1\n"},
        headers={"X-CSRF-Token": good},
    )
    assert checked.status_code == 200 and 'data-line="4"' in checked.text
    # The API itself refuses cookie-authenticated changes without the header.
    api = browser.post("/api/v1/provisioning-keys", json={"project": "default"})
    assert api.status_code == 403

    # Signing out revokes the session.
    assert browser.post("/logout", data={"csrf": good}).status_code == 303
    with httpx.Client(base_url=server.url, cookies={"edgefleet_session": session}) as stale:
        assert stale.get("/").status_code == 303
        assert stale.get("/api/v1/users/me").status_code == 401


def test_helpers() -> None:
    assert safe_next("/jobs/1?x=2") == "/jobs/1?x=2"
    for bad in ("//evil.example", "https://evil.example", "/\\evil.example", "", None):
        assert safe_next(bad) == "/"
    assert parse_pairs("a=1\n# note\n\n b = two \n", "labels") == {"a": "1", "b": "two"}
    with pytest.raises(Exception, match="line 1"):
        parse_pairs("novalue", "labels")
    assert diff_patch({"a": 1, "b": {"c": 1, "d": 2}, "e": 1}, {"a": 1, "b": {"c": 3}}) == {
        "b": {"c": 3, "d": None},
        "e": None,
    }
    lines, loose = annotate("a\nb\n", [{"line": 2, "key": "b"}, {"line": None, "key": "x"}])
    assert [len(line.findings) for line in lines] == [0, 1]
    assert loose == [{"line": None, "key": "x"}]
