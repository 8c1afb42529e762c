"""``edgefleet login --sso``: an API token through the institution's sign-in.

::

    CLI                                  browser                  edgefleet server     provider
     | verifier (kept in memory), challenge = S256(verifier), state
     | listen on 127.0.0.1:<random port>
     | print (and open) <server>/auth/oidc/cli?port&challenge&state
     |                                    |--------------------------> begin sign-in -->|
     |                                    |<------------- the user signs in ------------|
     |                                    |---- callback (code, state) -->| verify ID token
     |<-- 127.0.0.1:<port>/callback?code=<one-time>&state ---------------|
     | POST /api/v1/auth/oidc/token {code, code_verifier} -------------->| 201 {token}
     | save server + token (~/.config/edgefleet/cli.json, mode 0600)

The API token crosses only the CLI's own HTTPS request: the browser carries
a one-time code that is worthless without the verifier, which never leaves
this process. The listener answers only ``/callback`` with this run's state.
``--paste`` (no loopback port; e.g. over SSH without port forwarding) shows
the one-time code in the browser to type in here instead. Where the provider
offers device sign-in (RFC 8628, announced in its discovery document) and
there is no browser here, or with ``--device``, the CLI shows a URL and a code
to enter on any device and polls the server, which holds the provider's
device code under a handle only this process knows.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
import threading
import time
import webbrowser
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import typer

from edgefleet.client.errors import ClientError

if TYPE_CHECKING:
    from edgefleet.client.client import Client
    from edgefleet.client.models import SsoDevicePoll, SsoToken

DONE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>edgefleet</title>"
    b"<p>Signed in. You can close this tab and return to the terminal.</p>"
)


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (RFC 7636: 43-128 characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Callback:
    """What arrives at the loopback listener: the one-time code, once, with our state."""

    state: str
    code: str | None = None
    arrived: threading.Event = field(default_factory=threading.Event)


def _listener(callback: Callback) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            state, code = query.get("state", [""])[0], query.get("code", [""])[0]
            if (
                url.path != "/callback"
                or not code
                or not secrets.compare_digest(state, callback.state)
            ):
                self.send_error(400, "not this sign-in")
                return
            callback.code = code
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(DONE_PAGE)))
            self.end_headers()
            self.wfile.write(DONE_PAGE)
            callback.arrived.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the terminal shows our own messages only

    return HTTPServer(("127.0.0.1", 0), Handler)


def sso_token(
    server: str, *, open_browser: bool, paste: bool, device: bool | None, timeout: float
) -> SsoToken | SsoDevicePoll:
    """Run the sign-in and answer the server's ``{"token", "user", "expires_at"}``.

    ``device``: True for device sign-in (RFC 8628), None to use it when the
    provider offers it and this machine has no browser to open."""
    from edgefleet.client.client import Client

    with Client(server) as client:
        info = client.oidc_info()
        if not info.get("enabled"):
            raise ClientError(
                f"{server} does not offer single sign-on (its administrator sets --oidc-issuer); "
                "use 'edgefleet login --token' instead"
            )
        if device is None:
            device = bool(info.get("device_flow")) and not paste and not browser_available()
        if device:
            if not info.get("device_flow"):
                raise ClientError(
                    f"{info.get('issuer')} does not offer device sign-in; "
                    "use 'edgefleet login --sso' (or --paste)"
                )
            return _device(client, timeout)
        verifier, challenge = pkce_pair()
        callback = Callback(state=secrets.token_urlsafe(24))
        listener = None if paste else _listener(callback)
        port = 0 if listener is None else int(listener.server_address[1])
        query = urlencode({"port": port, "challenge": challenge, "state": callback.state})
        url = f"{info['cli_url']}?{query}"
        typer.echo(f"Sign in with {info.get('issuer')} in a browser, at:\n\n  {url}\n")
        if open_browser:
            webbrowser.open(url)
        if listener is None:
            code = typer.prompt("Code shown in the browser").strip()
        else:
            code = _wait(listener, callback, timeout)
        return client.oidc_token(code, verifier)


def _device(client: Client, timeout: float) -> SsoDevicePoll:
    """Device sign-in: show where to go and the code to type, then poll."""
    start = client.oidc_device_start()
    where = start.get("verification_uri_complete") or start["verification_uri"]
    typer.echo(f"On any device, open:\n\n  {where}\n\nand enter the code  {start['user_code']}\n")
    interval = float(start.get("interval") or 5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        answer = client.oidc_device_token(start["handle"])
        if "token" in answer:
            return answer
        if answer.get("status") == "slow_down":
            interval += 5
    raise ClientError(f"the device sign-in was not approved within {timeout:g} s")


def _wait(listener: HTTPServer, callback: Callback, timeout: float) -> str:
    thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    typer.echo("Waiting for the browser to come back...", err=True)
    try:
        if not callback.arrived.wait(timeout):
            raise ClientError(
                f"no sign-in arrived within {timeout:g} s; run 'edgefleet login --sso' again "
                "(or with --paste when the browser runs on another machine)"
            )
    finally:
        listener.shutdown()
        listener.server_close()
    assert callback.code is not None
    return callback.code


def browser_available() -> bool:
    """Whether opening a browser here makes sense (a terminal session with a display)."""
    import os

    return sys.stdout.isatty() and bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform == "darwin"
    )
