"""Pure parts of the app proxy's origin rules: where apps live, which Origin
counts as the app's own, and which of an app's response headers a browser sees."""

from __future__ import annotations

import pytest

from edgefleet.server.proxy import origins
from edgefleet.server.proxy.http import SANDBOX, app_cookie_allowed, response_headers_for
from edgefleet.server.settings import ServerSettings


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "localhost"),  # make run: loopback, no DNS needed
        ({"host": "::1"}, "localhost"),
        ({"host": "0.0.0.0"}, None),  # reached by other machines: *.localhost is theirs
        ({"public_url": "https://fleet.example.org"}, None),  # behind a proxy: needs DNS
        ({"public_url": "http://localhost:8400"}, "localhost"),
        ({"apps_domain": "Apps.Example.org."}, "apps.example.org"),
        ({"apps_domain": "off"}, None),
        ({"apps_domain": ""}, None),
    ],
)
def test_apps_domain_default(kwargs: dict[str, str], expected: str | None) -> None:
    assert ServerSettings(**kwargs).resolved_apps_domain() == expected  # type: ignore[arg-type]


def test_app_url_is_the_apps_own_origin() -> None:
    local = ServerSettings(port=8400)
    assert origins.app_url(local, "jabc", "dxyz", "web", 8080) == (
        "http://jabc-dxyz-web-8080.localhost:8400/"
    )
    public = ServerSettings(public_url="https://fleet.example.org", apps_domain="apps.example.org")
    assert (
        origins.app_url(public, "j1", "d1", "web", 80) == "https://j1-d1-web-80.apps.example.org/"
    )
    # a name browsers would not give back unchanged stays in (sandboxed) path mode
    assert origins.app_url(local, "j1", "d1", "Web_UI", 80) == "/proxy/j1/d1/Web_UI/80/"
    assert origins.app_url(ServerSettings(apps_domain="off"), "j1", "d1", "web", 80) == (
        "/proxy/j1/d1/web/80/"
    )


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://a.localhost:8400", "a.localhost:8400", True),
        ("http://A.localhost:8400", "a.localhost:8400", True),
        ("https://a.example.org", "a.example.org:443", True),
        ("http://evil.localhost:8400", "a.localhost:8400", False),
        ("http://127.0.0.1:8400", "a.localhost:8400", False),
        ("http://a.localhost:8401", "a.localhost:8400", False),
        ("null", "a.localhost:8400", False),
        ("http://a.localhost:99999", "a.localhost:99999", False),
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert origins.same_origin(origin, host) is same


APP_HEADERS = [
    ("Content-Type", "text/html"),
    ("Set-Cookie", "pref=dark; Path=/"),
    ("Set-Cookie", "edgefleet_session=x; Path=/"),
    ("Set-Cookie", "__Host-edgefleet_session=x; Path=/; Secure"),
    ("Set-Cookie", "wide=1; Path=/; Domain=localhost"),
    ("Clear-Site-Data", '"cookies"'),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Credentials", "true"),
    ("Service-Worker-Allowed", "/"),
    ("Location", "/next"),
    ("Transfer-Encoding", "chunked"),
]


def test_on_the_portal_origin_an_app_is_sandboxed_and_sets_nothing() -> None:
    kept = response_headers_for(APP_HEADERS, "/proxy/j/d/web/80", portal_origin=True)
    assert kept == [
        ("Content-Type", "text/html"),
        ("Location", "/proxy/j/d/web/80/next"),
        ("Content-Security-Policy", SANDBOX),
    ]
    assert "allow-same-origin" not in SANDBOX


def test_on_its_own_host_an_app_keeps_its_own_cookies_only() -> None:
    kept = response_headers_for(APP_HEADERS, "", portal_origin=False)
    names = [name.lower() for name, _ in kept]
    assert ("Set-Cookie", "pref=dark; Path=/") in kept
    assert names.count("set-cookie") == 1
    assert "clear-site-data" not in names and "content-security-policy" not in names
    assert "access-control-allow-origin" in names  # its own origin, its own business


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("a=1", True),
        ("a=1; Path=/; HttpOnly; SameSite=Lax", True),
        ("a=1; domain=.localhost", False),
        ("a=1; Path=/; DOMAIN=example.org", False),
        ("edgefleet_app=1", False),
        ("EDGEFLEET_SESSION=1", False),
        ("__Secure-edgefleet_x=1; Secure", False),
        ("domain=1", True),  # a cookie named domain is not a Domain attribute
    ],
)
def test_app_cookie_allowed(header: str, allowed: bool) -> None:
    assert app_cookie_allowed(header) is allowed
