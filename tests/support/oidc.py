"""A real OpenID provider for the single sign-on tests: ``oidc-provider-mock``
(PyPI), run as its own process. It serves discovery, JWKS, an authorize form
(the test types the subject; the subject's claims, groups included, are set
beforehand with ``PUT /users/{sub}``), the token and userinfo endpoints, and
signs real RS256 ID tokens. Its issuer is the URL it is reached at, so
``http://localhost:P`` and ``http://127.0.0.1:P`` are two different issuers.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.support.procs import Proc, base_env, free_port, listening, wait_for

CLIENT_ID = "edgefleet-test"
CLIENT_SECRET = "test-client-secret"


class ProviderProc(Proc):
    def __init__(
        self,
        workdir: Path,
        *,
        token_max_age: int | None = None,
        name: str = "oidc",
        port: int | None = None,
        device: bool = False,
    ) -> None:
        """``device``: the mock with device sign-in added (``oidc_device.py``)."""
        self.port = port or free_port()
        argv = [sys.executable, "-m", "oidc_provider_mock", "--port", str(self.port)]
        if device:
            argv = [sys.executable, str(Path(__file__).with_name("oidc_device.py"))]
            argv += ["--port", str(self.port)]
        if token_max_age is not None:
            argv += ["--token-max-age", str(token_max_age)]
        super().__init__(name, argv, workdir / f"{name}.log", base_env(NO_COLOR="1"))

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()

        def up() -> bool:
            if not self.running:
                raise AssertionError(f"provider exited:\n{self.log()[-2000:]}")
            return listening(self.port)

        wait_for(up, 20, what="the OIDC provider")

    def set_user(self, sub: str, **claims: Any) -> None:
        """What the provider will say about ``sub`` from now on (groups included)."""
        httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()

    def authorize(self, authorize_url: str, sub: str) -> str:
        """Submit the provider's authorize form as ``sub``; answer where it redirects."""
        response = httpx.post(authorize_url, data={"sub": sub}, timeout=10)
        assert response.status_code in (302, 303), response.text[:500]
        return str(response.headers["location"])

    def id_token(
        self,
        sub: str,
        *,
        nonce: str,
        client_id: str = CLIENT_ID,
        host: str = "127.0.0.1",
    ) -> str:
        """A genuine ID token from the provider, for the checks of the verifier."""
        base = f"http://{host}:{self.port}"
        redirect_uri = "http://127.0.0.1:9/cb"
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid profile email",
                "state": secrets.token_urlsafe(8),
                "nonce": nonce,
            }
        )
        back = self.authorize(f"{base}/oauth2/authorize?{query}", sub)
        code = parse_qs(urlsplit(back).query)["code"][0]
        response = httpx.post(
            f"{base}/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            auth=(client_id, CLIENT_SECRET),
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["id_token"])


def server_args(provider: ProviderProc, role_map: str) -> list[str]:
    """The ``edgefleet server`` flags for single sign-on through ``provider``."""
    return [
        "--oidc-issuer",
        provider.issuer,
        "--oidc-client-id",
        CLIENT_ID,
        "--oidc-client-secret",
        CLIENT_SECRET,
        "--oidc-role-map",
        role_map,
    ]


def sign_in(
    server_url: str, provider: ProviderProc, sub: str, next_url: str = "/"
) -> tuple[httpx.Client, httpx.Response]:
    """A browser-like client signed in to the portal through the provider (plain HTTP),
    and the server's answer to the provider's redirect back."""
    browser = httpx.Client(base_url=server_url, timeout=30)
    start = browser.get("/auth/oidc/login", params={"next": next_url})
    assert start.status_code == 303, start.text[:500]
    back = provider.authorize(start.headers["location"], sub)
    done = browser.get(back)
    assert done.status_code in (200, 303), done.text[:1000]
    return browser, done
