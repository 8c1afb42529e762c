"""A proxied app never runs with the portal's origin (issue 14).

A hostile app (a real process workload on a real agent) serves a page whose
script tries what a malicious developer would against the admin who opens
it: read the portal (its CSRF token), mint an API token, plant a session
cookie. The admin opens it in Chromium both ways a browser gets there:

- the portal's link / the SPEC path ``/proxy/…``, which sends browsers to the
  app's own origin ``<job>-<device>-<service>-<port>.localhost`` (the
  default on a loopback server, no DNS needed);
- path mode served on the portal's origin (what a bearer client gets), which
  must be sandboxed into an opaque origin.

Every attempt fails in the browser and, checked from the server side, no
token is minted and the admin's portal session still works. The app's own
headers cannot set edgefleet's cookies either, and a WebSocket opened with
the visitor's cookie from a foreign origin is refused.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import Fleet
from tests.support.browser import chromium
from tests.support.procs import (
    ADMIN_TOKEN,
    ServerProc,
    free_port,
    kill_process_workloads,
    listening,
    stop_all,
    wait_for,
)

pytestmark = pytest.mark.slow

HOSTILE_APP = r"""
import http.server, json, sys
port, portal = int(sys.argv[1]), sys.argv[2]
PAGE = '''<!doctype html><title>hostile</title><h1>an innocent app</h1><script>
const PORTAL = "%s";
const results = {origin: String(window.origin)};
async function attempt(name, fn) {
  try { results[name] = "ok:" + String(await fn()).slice(0, 300); }
  catch (e) { results[name] = "blocked:" + e; }
}
(async () => {
  await attempt("fetch_root", async () => {
    const text = await (await fetch("/", {credentials: "include"})).text();
    return text.includes("X-CSRF" + "-Token") ? "PORTAL " + text : "the app's own page";
  });
  await attempt("read_portal", async () =>
    (await fetch(PORTAL + "/", {credentials: "include"})).text());
  await attempt("mint_token", async () => {
    const page = await (await fetch(PORTAL + "/jobs", {credentials: "include"})).text();
    const csrf = (page.match(new RegExp('"X-CSRF' + '-Token": "([^"]+)"')) || [])[1] || "";
    const r = await fetch(PORTAL + "/api/v1/tokens", {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json", ["X-CSRF" + "-Token"]: csrf},
      body: JSON.stringify({name: "stolen"})});
    return r.status + " " + await r.text();
  });
  await attempt("mint_token_blind", async () => {
    const r = await fetch(PORTAL + "/api/v1/tokens", {method: "POST", mode: "no-cors",
      credentials: "include", headers: {"Content-Type": "text/plain"},
      body: JSON.stringify({name: "stolen-blind"})});
    return r.type;
  });
  await attempt("read_frame", async () => {
    const frame = document.createElement("iframe");
    frame.src = PORTAL + "/";
    document.body.appendChild(frame);
    await new Promise(done => setTimeout(done, 1500));
    return frame.contentDocument.documentElement.outerHTML;
  });
  await attempt("plant_cookie", async () => {
    document.cookie = "edgefleet_session=planted; path=/";
    document.cookie = "edgefleet_session=planted-domain; domain=localhost; path=/";
    document.cookie = "edgefleet_session=planted-ip; domain=127.0.0.1; path=/";
    return document.cookie;
  });
  window.__results = results;
  document.title = "done";
})();
</script>''' % portal

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/whoami"):
            body = json.dumps({"cookie": self.headers.get("cookie"),
                               "authorization": self.headers.get("authorization")}).encode()
            kind = "application/json"
        else:
            body, kind = PAGE.encode(), "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "edgefleet_session=from-app; Path=/")
        self.send_header("Set-Cookie", "__Host-edgefleet_session=from-app; Path=/; Secure")
        self.send_header("Set-Cookie", "wide=1; Domain=localhost; Path=/")
        self.send_header("Set-Cookie", "app_pref=dark; Path=/")
        self.send_header("Clear-Site-Data", '"cookies"')
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

WS_ECHO = r"""
import base64, hashlib, socketserver, struct, sys
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        headers = {}
        self.rfile.readline()
        while (line := self.rfile.readline().decode().strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest())
        self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, size = head[0] & 0x0F, head[1] & 0x7F
            if size == 126:
                size = struct.unpack(">H", self.rfile.read(2))[0]
            elif size == 127:
                size = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(size)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                return
            length = bytes([size]) if size < 126 else b"\x7e" + struct.pack(">H", size)
            self.wfile.write(bytes([0x80 | opcode]) + length + data)

socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
"""
PYTHON = "/usr/bin/python3"  # process services may run as another user (nobody)


@dataclass
class Hostile:
    server: ServerProc
    job: str
    device: str
    web_port: int
    ws_port: int

    def host(self, service: str, port: int) -> str:
        return f"{self.job}-{self.device}-{service}-{port}.localhost:{self.server.port}"

    @property
    def web_path(self) -> str:
        return f"/proxy/{self.job}/{self.device}/web/{self.web_port}/"

    def admin_tokens(self) -> list[tuple[str, str]]:
        with self.server.client() as client:
            return sorted((t["id"], t["name"]) for t in client.tokens())


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    workdir = tmp_path_factory.mktemp("proxy-origin")
    fleet = Fleet(workdir, None)
    try:
        server = fleet.start_server()  # defaults: loopback, so apps get *.localhost origins
        device = fleet.start_agent("pi", runtime="process").wait_enrolled()
        web_port, ws_port = free_port(), free_port()
        spec = {
            "services": {
                "web": {
                    "x-edgefleet-runtime": "process",
                    "command": [PYTHON, "-c", HOSTILE_APP, str(web_port), server.url],
                    "ports": [str(web_port)],
                },
                "echo": {
                    "x-edgefleet-runtime": "process",
                    "command": [PYTHON, "-c", WS_ECHO, str(ws_port)],
                    "expose": [str(ws_port)],
                },
            }
        }
        with server.client() as client:
            client.create_application("hostile", "1", spec=spec)
            job = client.create_job("hostile", devices=[device])["id"]
        wait_for(lambda: listening(web_port) and listening(ws_port), 60, what="the app serving")
        yield Hostile(server, job, device, web_port, ws_port)
        with server.client() as client:
            client.cancel_job(job)
        wait_for(lambda: not listening(web_port), 30, what="the app stopped")
    finally:
        stop_all(fleet.procs)
        kill_process_workloads(workdir)


def portal_session(server: ServerProc) -> str:
    """Sign in to the portal as the admin (token sign-in), as a browser would."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        form = http.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        signed = http.post(
            "/login",
            data={"csrf": csrf[1], "method": "token", "token": ADMIN_TOKEN, "next": "/"},
        )
        assert signed.status_code in (302, 303), signed.text
        return str(signed.cookies["edgefleet_session"])


def app_cookie(app: Hostile, session: str, service: str, port: int) -> str:
    """The app-host cookie, minted through the real /proxy-auth handshake."""
    host = app.host(service, port)
    with httpx.Client(timeout=30) as http:
        handshake = http.get(
            f"{app.server.url}/proxy-auth",
            params={"host": host, "next": "/"},
            headers={"Cookie": f"edgefleet_session={session}"},
        )
        assert handshake.status_code == 302, handshake.text
        location = urlsplit(handshake.headers["location"])
        assert location.netloc == host
        token = parse_qs(location.query)["token"][0]
        landed = http.get(
            f"{app.server.url}{location.path}",
            params={"token": token, "next": "/"},
            headers={"Host": host},
        )
        assert landed.status_code == 302
        return str(landed.cookies["edgefleet_app"])


def sign_in(page: Any, base: str) -> None:
    """The admin signs in through the portal's own form (the token one)."""
    page.goto(f"{base}/login")
    page.get_by_text("Sign in with an API token").click()
    page.fill("#token", ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in with token").click()
    page.wait_for_url(f"{base}/")


def attack_results(page: Any) -> dict[str, str]:
    page.wait_for_function("document.title === 'done'", timeout=20_000)
    results: dict[str, str] = page.evaluate("window.__results")
    return results


def assert_attack_failed(results: dict[str, str]) -> None:
    """Each attempt of the page's script failed in the browser."""
    assert not results["fetch_root"].startswith("ok:PORTAL"), results
    for name in ("read_portal", "mint_token", "read_frame"):
        assert results[name].startswith("blocked:"), (name, results)


def assert_portal_intact(context: Any, hostile: Hostile, tokens_before: list[Any]) -> None:
    """Server side: no token minted; the admin's portal session still works."""
    assert hostile.admin_tokens() == tokens_before
    session = [c for c in context.cookies(hostile.server.url) if c["name"] == "edgefleet_session"]
    assert len(session) == 1 and session[0]["value"] not in ("planted", "planted-ip"), session
    page = context.new_page()
    page.goto(f"{hostile.server.url}/jobs/{hostile.job}")
    assert page.url == f"{hostile.server.url}/jobs/{hostile.job}"  # not sent to /login
    assert page.locator("body").get_attribute("hx-headers")  # signed in: the CSRF header is set
    page.close()


def test_browser_is_sent_to_the_apps_own_origin_where_it_cannot_reach_the_portal(
    hostile: Hostile,
) -> None:
    base = hostile.server.url
    own_origin = f"http://{hostile.host('web', hostile.web_port)}"
    tokens_before = hostile.admin_tokens()
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, base)
        # the portal's "Open" link points at the app's own origin, not the portal's
        page.goto(f"{base}/jobs/{hostile.job}")
        link = page.get_by_role("link", name=f"Open :{hostile.web_port}")
        assert link.get_attribute("href") == own_origin + "/"
        # the SPEC path, opened by a browser, lands on the app's own origin
        app = context.new_page()
        app.goto(base + hostile.web_path)
        assert app.url == own_origin + "/"
        results = attack_results(app)
        assert results["origin"] == own_origin
        assert results["fetch_root"] == "ok:the app's own page"
        assert_attack_failed(results)
        # the app's script may plant cookies on its own host only, never the portal's
        names = {(c["domain"], c["name"]) for c in context.cookies()}
        assert ("127.0.0.1", "edgefleet_session") in names
        portal_cookies = [c for c in context.cookies(base) if c["name"] == "edgefleet_session"]
        assert [c["httpOnly"] for c in portal_cookies] == [True]
        assert portal_cookies[0]["sameSite"] in ("Lax", "Strict")
        # the app's headers set none of edgefleet's cookies, nor one for a wider domain
        app_cookies = {c["name"]: c for c in context.cookies(own_origin)}
        assert "app_pref" in app_cookies and "wide" not in app_cookies
        assert app_cookies["edgefleet_app"]["value"] != "from-app"
        assert_portal_intact(context, hostile, tokens_before)
        context.close()


def test_path_mode_on_the_portal_origin_is_sandboxed(hostile: Hostile) -> None:
    """What path mode serves on the portal's host (here: to a request carrying a
    bearer token, injected into the navigation only) runs in an opaque origin."""
    base = hostile.server.url
    tokens_before = hostile.admin_tokens()
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, base)
        app = context.new_page()
        target = base + hostile.web_path

        def with_bearer(route: Any) -> None:
            headers = {**route.request.headers, "authorization": f"Bearer {ADMIN_TOKEN}"}
            route.continue_(headers=headers)

        app.route(target, with_bearer)
        response = app.goto(target)
        assert response is not None and response.status == 200
        assert app.url == target  # a bearer request stays in path mode
        csp = response.headers["content-security-policy"]
        assert "sandbox" in csp and "allow-same-origin" not in csp
        results = attack_results(app)
        assert results["origin"] == "null"
        assert results["fetch_root"].startswith("blocked:")
        assert_attack_failed(results)
        assert results["plant_cookie"].startswith("blocked:")  # no cookies in a sandbox
        assert_portal_intact(context, hostile, tokens_before)
        context.close()


def test_app_headers_and_edgefleet_credentials_do_not_cross(hostile: Hostile) -> None:
    server = hostile.server
    session = portal_session(server)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # path mode, bearer: content served, sandboxed, without the app's cookies
        path = http.get(hostile.web_path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert path.status_code == 200 and "an innocent app" in path.text
        assert "set-cookie" not in path.headers
        assert "clear-site-data" not in path.headers
        assert "access-control-allow-origin" not in path.headers
        assert "sandbox allow-scripts" in path.headers["content-security-policy"]
        # path mode, portal cookie, a page: redirected to the app's own origin
        moved = http.get(hostile.web_path, headers={"Cookie": f"edgefleet_session={session}"})
        assert moved.status_code == 302
        assert moved.headers["location"] == f"http://{hostile.host('web', hostile.web_port)}/"
        # the portal's cookie and the bearer never reach the app
        whoami = http.get(
            hostile.web_path + "whoami",
            headers={
                "Authorization": f"Bearer {ADMIN_TOKEN}",
                "Cookie": f"edgefleet_session={session}; mine=1",
            },
        ).json()
        assert whoami == {"cookie": "mine=1", "authorization": None}
    # on the app's own host: its own cookies pass, edgefleet's names and Domain= do not
    cookie = app_cookie(hostile, session, "web", hostile.web_port)
    with httpx.Client(timeout=30) as http:
        hosted = http.get(
            f"{server.url}/whoami",
            headers={
                "Host": hostile.host("web", hostile.web_port),
                "Cookie": f"edgefleet_app={cookie}; mine=2",
            },
        )
        assert hosted.status_code == 200
        assert hosted.json() == {"cookie": "mine=2", "authorization": None}
        set_cookies = hosted.headers.get_list("set-cookie")
        assert set_cookies == ["app_pref=dark; Path=/"], set_cookies
        assert "clear-site-data" not in hosted.headers
        assert "content-security-policy" not in hosted.headers  # its own origin: not sandboxed


def test_websocket_origin_is_checked(hostile: Hostile) -> None:
    server = hostile.server
    session = portal_session(server)
    host = hostile.host("echo", hostile.ws_port)
    cookie = app_cookie(hostile, session, "echo", hostile.ws_port)
    url = f"ws://{host}/"

    def open_ws(headers: dict[str, str], origin: str | None) -> Any:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        return connect(
            url,
            sock=sock,
            additional_headers=headers,
            origin=origin,  # type: ignore[arg-type]
            open_timeout=10,
        )

    # a page of another origin (another app of the same server, say) is refused
    for foreign in (f"http://evil.localhost:{server.port}", server.url, "null"):
        with pytest.raises(InvalidStatus) as refused:
            open_ws({"Cookie": f"edgefleet_app={cookie}"}, foreign)
        assert refused.value.response.status_code == 403
        assert b"cross-origin WebSocket refused" in refused.value.response.body
    # a cookie without any Origin is not a browser: it needs a bearer token
    with pytest.raises(InvalidStatus) as bare:
        open_ws({"Cookie": f"edgefleet_app={cookie}"}, None)
    assert bare.value.response.status_code == 403
    assert b"needs 'Authorization: Bearer" in bare.value.response.body
    # the app's own page gets through, and so does a bearer client without Origin
    with open_ws({"Cookie": f"edgefleet_app={cookie}"}, f"http://{host}") as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
    with open_ws({"Authorization": f"Bearer {ADMIN_TOKEN}"}, None) as ws:
        ws.send("from a script")
        assert ws.recv(timeout=10) == "from a script"
    # path mode: a browser's portal cookie from a sandboxed page (Origin: null) is refused
    path_url = (
        f"ws://127.0.0.1:{server.port}/proxy/{hostile.job}/{hostile.device}/echo/{hostile.ws_port}/"
    )
    with pytest.raises(InvalidStatus) as sandboxed:
        connect(
            path_url,
            additional_headers={"Cookie": f"edgefleet_session={session}"},
            origin="null",  # type: ignore[arg-type]
            open_timeout=10,
        )
    assert sandboxed.value.response.status_code == 403
