"""Attacks on single sign-on, against a real OpenID provider process.

ID tokens are genuine ones from the provider (for another client, from the
provider reached under another name, expired, with another sign-in's nonce)
or forged with a key of our own; the server's verifier must refuse each, and
accept the genuine, fitting one. The browser flow is attacked over HTTP:
a state that is not this browser's (login CSRF), a replayed callback, an
open redirect in ``next``; then what an SSO account can and cannot do.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from edgefleet.server.auth.oidc_config import OidcConfig
from edgefleet.server.auth.oidc_provider import Identity, OidcProvider
from edgefleet.server.errors import Unauthorized
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, ProviderProc, server_args, sign_in
from tests.support.procs import ServerProc, stop_all


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oidc-attacks")


@pytest.fixture(scope="module")
def provider(workdir: Path) -> Iterator[ProviderProc]:
    proc = ProviderProc(workdir)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def server(workdir: Path, provider: ProviderProc) -> Iterator[ServerProc]:
    proc = ServerProc(workdir, extra_args=server_args(provider, "physics=lab-a:developer"))
    proc.start()
    with proc.client() as admin:
        admin.create_project("lab-a")
    yield proc
    stop_all([proc])


def verify(provider: ProviderProc, token: str, nonce: str, issuer: str | None = None) -> Identity:
    config = OidcConfig(
        issuer=issuer or provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes=("openid",),
        groups_claim="groups",
        username_claim="preferred_username",
        leeway_seconds=0,
        jwks_refresh_seconds=0,
    )

    async def run() -> Identity:
        oidc = OidcProvider(config)
        try:
            return await oidc.verify_id_token(token, nonce)
        finally:
            await oidc.close()

    return asyncio.run(run())


def refused(provider: ProviderProc, token: str, nonce: str, why: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        verify(provider, token, nonce)
    assert re.search(why, caught.value.message), caught.value.message


def claims(provider: ProviderProc, nonce: str) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": provider.issuer,
        "aud": CLIENT_ID,
        "sub": "mallory",
        "iat": now,
        "exp": now + 600,
        "nonce": nonce,
        "groups": ["physics"],
    }


# --- the ID token ------------------------------------------------------------------------


def test_a_genuine_token_for_this_sign_in_is_accepted(provider: ProviderProc) -> None:
    """The control: the refusals below are refusals, not a verifier that fails everything."""
    provider.set_user("grace", groups=["physics"])
    identity = verify(provider, provider.id_token("grace", nonce="n-1"), "n-1")
    assert identity.subject == "grace" and identity.claims["groups"] == ["physics"]


def test_forged_tokens_are_refused(provider: ProviderProc) -> None:
    real_kid = httpx.get(f"{provider.issuer}/jwks").json()["keys"][0]["kid"]
    mine = RSAKey.generate_key(2048, parameters={"kid": real_kid})
    forged = jwt.encode({"alg": "RS256", "kid": real_kid}, claims(provider, "n"), mine)
    refused(provider, forged, "n", "signature")
    unknown = RSAKey.generate_key(2048, parameters={"kid": "attacker-key"})
    forged = jwt.encode({"alg": "RS256", "kid": "attacker-key"}, claims(provider, "n"), unknown)
    refused(provider, forged, "n", "signature is not the provider")
    # Algorithm confusion: a MAC keyed with the (not so secret) client secret.
    mac = OctKey.import_key(CLIENT_SECRET.encode())
    forged = jwt.encode({"alg": "HS256"}, claims(provider, "n"), mac, algorithms=["HS256"])
    refused(provider, forged, "n", "malformed|wrongly signed|signature")

    # alg "none": header and claims, no signature at all.
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    refused(provider, f"{b64({'alg': 'none'})}.{b64(claims(provider, 'n'))}.", "n", ".")
    refused(provider, "not-a-jwt", "n", "malformed")


def test_a_token_for_another_client_is_refused(provider: ProviderProc) -> None:
    token = provider.id_token("grace", nonce="n-2", client_id="someone-elses-app")
    refused(provider, token, "n-2", "another client")


def test_a_token_from_another_issuer_is_refused(provider: ProviderProc) -> None:
    """Same keys, but the provider reached as ``localhost`` names another issuer."""
    token = provider.id_token("grace", nonce="n-3", host="localhost")
    refused(provider, token, "n-3", "another issuer")


def test_an_expired_token_is_refused(workdir: Path) -> None:
    short = ProviderProc(workdir, token_max_age=1, name="oidc-short")
    short.start()
    try:
        token = short.id_token("grace", nonce="n-4")
        time.sleep(2.2)
        refused(short, token, "n-4", "expired")
    finally:
        short.stop()


def test_a_token_replayed_into_another_sign_in_is_refused(provider: ProviderProc) -> None:
    """A token captured from one sign-in carries that sign-in's nonce; any other
    sign-in (its own fresh nonce) refuses it."""
    token = provider.id_token("grace", nonce="first-sign-in")
    refused(provider, token, "second-sign-in", "nonce")


# --- the browser flow ---------------------------------------------------------------------


def _to_callback(
    server: ServerProc, provider: ProviderProc, sub: str, **query: str
) -> tuple[httpx.Client, str]:
    browser = httpx.Client(base_url=server.url, timeout=30)
    start = browser.get("/auth/oidc/login", params=query)
    assert start.status_code == 303, start.text[:300]
    return browser, provider.authorize(start.headers["location"], sub)


def test_a_callback_in_another_browser_is_refused(
    server: ServerProc, provider: ProviderProc
) -> None:
    """Login CSRF: the attacker's own callback URL, opened in the victim's browser,
    must not sign the victim in (as the attacker)."""
    provider.set_user("mallory", groups=["physics"])
    attacker, callback = _to_callback(server, provider, "mallory")
    with httpx.Client(timeout=30) as victim:
        answer = victim.get(callback)
        assert answer.status_code == 401 and "another browser" in answer.text
        assert not any(c.startswith("edgefleet_session") for c in victim.cookies)
    tampered = re.sub(r"state=[^&]+", "state=" + secrets.token_urlsafe(32), callback)
    answer = attacker.get(tampered)
    assert answer.status_code == 401 and "state mismatch" in answer.text
    assert attacker.get(callback).status_code == 303, "the refusals did not burn the real sign-in"
    attacker.close()


def test_a_replayed_callback_is_refused(server: ServerProc, provider: ProviderProc) -> None:
    provider.set_user("heidi", groups=["physics"])
    browser, callback = _to_callback(server, provider, "heidi")
    assert browser.get(callback).status_code == 303
    replay = browser.get(callback)  # same browser, same cookie: the state is spent
    assert replay.status_code == 401 and "already used" in replay.text
    browser.close()


@pytest.mark.parametrize(
    "target", ["https://evil.example/phish", "//evil.example/x", "/\\evil.example", "javascript:1"]
)
def test_next_cannot_leave_the_site(
    server: ServerProc, provider: ProviderProc, target: str
) -> None:
    provider.set_user("ivan", groups=["physics"])
    browser, landing = sign_in(server.url, provider, "ivan", next_url=target)
    browser.close()
    assert landing.status_code == 303 and landing.headers["location"] == "/"


# --- what an SSO account gets ---------------------------------------------------------------


def _projects(server: ServerProc, name: str) -> dict[str, str] | None:
    with server.client() as admin:
        user = next((u for u in admin.users() if u["name"] == name), None)
    return None if user is None else dict(user["projects"])


def test_an_unmapped_group_grants_nothing(server: ServerProc, provider: ProviderProc) -> None:
    provider.set_user("judy", preferred_username="judy", groups=["lab-a", "admins", "owner"])
    browser, landing = sign_in(server.url, provider, "judy")
    browser.close()
    assert landing.status_code == 200 and "No project roles" in landing.text
    assert _projects(server, "judy") == {}


def test_no_groups_claim_means_no_roles_with_a_clear_page(
    server: ServerProc, provider: ProviderProc
) -> None:
    provider.set_user("karl", preferred_username="karl")
    browser, landing = sign_in(server.url, provider, "karl")
    browser.close()
    assert landing.status_code == 200 and "sent no 'groups' claim" in html.unescape(landing.text)
    assert _projects(server, "karl") == {}


def test_an_sso_user_has_no_password(server: ServerProc, provider: ProviderProc) -> None:
    provider.set_user("leo", preferred_username="leo", groups=["physics"])
    sign_in(server.url, provider, "leo")[0].close()
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        page = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "next": "/", "method": "password"}
        answer = browser.post("/login", data={**form, "username": "leo", "password": ""})
        assert "single sign-on" in answer.text
        assert not any(c.startswith("edgefleet_session") for c in browser.cookies)
    with server.http() as admin:
        answer = admin.put("/api/v1/users/leo/password", json={"password": "a-new-password"})
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "password"


def test_a_provider_name_never_takes_over_a_local_account(
    server: ServerProc, provider: ProviderProc
) -> None:
    """A provider user called like a local one gets another name, and none of the
    local account's roles; the local account keeps its password sign-in."""
    with server.client() as admin:
        admin.create_user("mike", password="local-password-1")
        admin.add_member("lab-a", "mike", "owner")
    provider.set_user("not-mike", preferred_username="mike", groups=[])
    browser, _ = sign_in(server.url, provider, "not-mike")
    me = browser.get("/api/v1/users/me").json()
    browser.close()
    assert me["name"] != "mike" and me["name"].startswith("mike-")
    assert _projects(server, "mike") == {"lab-a": "owner"}
    # ...and the local account still signs in with its password beside single sign-on.
    with httpx.Client(base_url=server.url, timeout=30) as local:
        page = local.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "next": "/apps", "method": "password"}
        answer = local.post(
            "/login", data={**form, "username": "mike", "password": "local-password-1"}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/apps"
        assert any(c.startswith("edgefleet_session") for c in local.cookies)


# --- the CLI's one-time code ----------------------------------------------------------------


def _cli_code(server: ServerProc, provider: ProviderProc, challenge: str) -> str:
    provider.set_user("nina", preferred_username="nina", groups=["physics"])
    state = secrets.token_urlsafe(16)
    with httpx.Client(timeout=30) as browser:
        query = urlencode({"port": 0, "challenge": challenge, "state": state})
        start = browser.get(f"{server.url}/auth/oidc/cli?{query}")
        page = browser.get(provider.authorize(start.headers["location"], "nina"))
    found = re.search(r'id="oidc-code">([^<]+)<', page.text)
    assert found, page.text[:500]
    return found.group(1)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_the_cli_code_needs_its_verifier_and_works_once(
    server: ServerProc, provider: ProviderProc
) -> None:
    verifier, challenge = _pkce()
    code = _cli_code(server, provider, challenge)
    with httpx.Client(base_url=server.url, timeout=30) as anyone:
        wrong = anyone.post(
            "/api/v1/auth/oidc/token", json={"code": code, "code_verifier": _pkce()[0]}
        )
        assert wrong.status_code == 401
        burned = anyone.post(
            "/api/v1/auth/oidc/token", json={"code": code, "code_verifier": verifier}
        )
        assert burned.status_code == 401, "a wrong guess burns the code"
        verifier, challenge = _pkce()
        code = _cli_code(server, provider, challenge)
        body = {"code": code, "code_verifier": verifier}
        got = anyone.post("/api/v1/auth/oidc/token", json=body)
        assert got.status_code == 201 and got.json()["user"] == "nina"
        assert anyone.post("/api/v1/auth/oidc/token", json=body).status_code == 401
        me = anyone.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {got.json()['token']}"}
        )
        assert me.json()["projects"] == {"lab-a": "developer"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"port": "80", "challenge": "a" * 43, "state": "s" * 16}, "port"),
        ({"port": "5000", "challenge": "<script>" + "a" * 35, "state": "s" * 16}, "challenge"),
        ({"port": "5000", "challenge": "a" * 43, "state": "s/../" * 4}, "state"),
    ],
)
def test_cli_sign_in_parameters_are_checked(
    server: ServerProc, query: dict[str, str], field: str
) -> None:
    answer = httpx.get(f"{server.url}/auth/oidc/cli", params=query, timeout=30)
    assert answer.status_code == 422 and field in answer.text
    assert "location" not in answer.headers


def test_the_loopback_redirect_goes_only_to_loopback(
    server: ServerProc, provider: ProviderProc
) -> None:
    _, challenge = _pkce()
    provider.set_user("olga", groups=[])
    with httpx.Client(timeout=30) as browser:
        query = urlencode({"port": 5555, "challenge": challenge, "state": "s" * 16})
        start = browser.get(f"{server.url}/auth/oidc/cli?{query}")
        back = browser.get(provider.authorize(start.headers["location"], "olga"))
    target = urlsplit(back.headers["location"])
    assert (target.scheme, target.hostname, target.port) == ("http", "127.0.0.1", 5555)
    assert set(parse_qs(target.query)) == {"code", "state"}


def test_a_stale_session_cookie_does_not_break_the_sign_in(
    server: ServerProc, provider: ProviderProc
) -> None:
    """A browser still holding a dead session (revoked, expired, from an older
    install) signs in: the callback changes the user's roles, and the stream guard
    must not end the callback for the dead cookie it carries."""
    provider.set_user("quinn", preferred_username="quinn", groups=["physics"])
    for _ in range(3):
        browser = httpx.Client(base_url=server.url, timeout=30)
        browser.cookies.set("edgefleet_session", "eft_" + secrets.token_urlsafe(32))
        start = browser.get("/auth/oidc/login")
        slow = provider.authorize(start.headers["location"], "quinn")
        provider.set_user("quinn", preferred_username="quinn", groups=["physics"])
        with server.client() as admin:  # a role to take away, so the sign-in commits a change
            if _projects(server, "quinn") == {"lab-a": "developer"}:
                admin.remove_member("lab-a", "quinn")
        answer = browser.get(slow)
        browser.close()
        assert answer.status_code == 303, answer.text[:300]
