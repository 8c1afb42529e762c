"""The portal's configuration page: a secret saved through the form is listed
by name and version only, rotated from the same form, and never shown; a
malformed value is refused on the page without repeating it."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Fleet

PASSWORD = "portal pass phrase 19"
VALUE = "portal-secret-Vb3-never-shown"


def test_secrets_and_variables_through_the_portal(fleet: Fleet) -> None:
    server = fleet.start_server()
    with server.client() as client:
        client.set_password("admin", PASSWORD)
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        login = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf is not None
        signed = browser.post(
            "/login",
            data={"csrf": csrf.group(1), "username": "admin", "password": PASSWORD},
        )
        assert signed.status_code == 303, signed.text[:300]
        page = browser.get("/projects/default/config")
        assert page.status_code == 200 and "No secrets yet" in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        form = {"csrf": token.group(1)}
        for value in (VALUE, VALUE + "-2"):
            saved = browser.post(
                "/projects/default/config/secrets",
                data={**form, "name": "api_token", "value": value},
            )
            assert saved.status_code == 303, saved.text[:300]
        bad = browser.post(
            "/projects/default/config/secrets", data={**form, "name": "../x", "value": VALUE}
        )
        assert bad.status_code == 200 and "name:" in bad.text and VALUE not in bad.text
        variable = browser.post(
            "/projects/default/config/variables",
            data={**form, "name": "REGION", "value": "eu-west", "selector": "site=a"},
        )
        assert variable.status_code == 303, variable.text[:300]
        cookies = dict(browser.cookies)
        page = browser.get("/projects/default/config")
        row = re.search(r"<td>api_token</td><td>(\d+)</td>", page.text)
        assert row is not None and row.group(1) == "2"
        assert VALUE not in page.text
        assert "eu-west" in page.text and "site=a" in page.text
    with server.client() as client:
        assert [s["version"] for s in client.secrets()] == [2]
        assert client.variables()[0]["selector"] == "site=a"
        key = client.create_key("default", labels={"site": "a"})["key"]
    agent = fleet.start_agent("pi-a", key=key)
    device = agent.wait_enrolled()
    with httpx.Client(base_url=server.url, timeout=30, cookies=cookies) as browser:
        page = browser.get(f"/devices/{device}/config")
        assert page.status_code == 200
        assert re.search(
            r"<td>REGION</td><td><code>eu-west</code></td><td>selector site=a</td>", page.text
        )
        own = browser.post(
            f"/devices/{device}/config/variables", data={**form, "name": "REGION", "value": "lab"}
        )
        assert own.status_code == 303, own.text[:300]
        page = browser.get(f"/devices/{device}/config")
        assert re.search(r"<td>REGION</td><td><code>lab</code></td><td>device</td>", page.text)
