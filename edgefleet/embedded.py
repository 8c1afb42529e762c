"""``edgefleet up``: a server and one local agent in one process, for a first look.

The server runs under uvicorn in this event loop; once it answers, a
provisioning key enrolls the local agent (first start only), the CLI is
logged in, and a demo application is deployed to the local device, so a
newcomer sees a device online and a job running within the first minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
import signal
import socket
import sys
from typing import Any

import uvicorn

from edgefleet.agent.agent import Agent
from edgefleet.agent.errors import AgentError
from edgefleet.agent.settings import AgentSettings
from edgefleet.client import Client, ClientError
from edgefleet.server.auth import service as auth_service
from edgefleet.server.context import ServerContext
from edgefleet.server.errors import Unauthorized
from edgefleet.server.main import configure_logging, uvicorn_config
from edgefleet.server.settings import ServerSettings

log = logging.getLogger("edgefleet.up")

DEMO_APP = "hello"
DEMO_PAGE = """
import html, http.server, os
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (
            "<!doctype html><title>edgefleet demo</title><h1>%s</h1>"
            "<p>Served by job <code>%s</code> on device <code>%s</code>, through the "
            "agent's outbound connection: no port is open on the device.</p>"
            % tuple(html.escape(os.environ.get(k, "?")) for k in
                    ("GREETING", "EDGEFLEET_JOB_ID", "EDGEFLEET_DEVICE_ID"))
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", 18080), Page).serve_forever()
"""

DEMO_COMPOSE = """\
# The demo application `edgefleet up` deploys: a tiny web page served by a
# supervised process on the local device (no container engine needed).
services:
  web:
    x-edgefleet-runtime: process
    command: ["{python}", "-c", {page}]
    environment:
      GREETING: Hello from edgefleet
    ports: ["18080"]
    restart: unless-stopped
"""


def _say(line: str = "") -> None:
    print(line, flush=True)


LOGIN_FILE = "up-login.json"


def _saved_token(settings: ServerSettings) -> str | None:
    try:
        data = json.loads((settings.data_dir / LOGIN_FILE).read_text())
    except (OSError, ValueError):
        return None
    token = data.get("token") if isinstance(data, dict) else None
    return token if isinstance(token, str) and token else None


def _save_token(settings: ServerSettings, token: str) -> None:
    """Keep ``up``'s login in its own data dir (mode 0600), beside the database
    it is valid for: the CLI's config may meanwhile point at another server."""
    path = settings.data_dir / LOGIN_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"token": token}, handle)
    os.replace(tmp, path)


async def _still_admin(ctx: ServerContext, token: str) -> bool:
    async with ctx.session() as db:
        try:
            caller = await auth_service.authenticate(db, token)
        except Unauthorized:
            return False
    return caller.is_admin


async def _admin_token(ctx: ServerContext, settings: ServerSettings, first: str | None) -> str:
    """The token ``up`` logs the CLI in with, minted at most once per data dir:
    ``EDGEFLEET_ADMIN_TOKEN``, else the bootstrap token of the first start, else
    the login saved by an earlier start (while it is valid and still an
    admin's). Only when that is gone (revoked, data dir copied without it) is a
    new token minted, named so the token list says where it came from."""
    if settings.admin_token:
        return settings.admin_token
    if first:
        _save_token(settings, first)
        return first
    saved = _saved_token(settings)
    if saved and await _still_admin(ctx, saved):
        return saved
    async with ctx.session() as db:
        admin = await auth_service.find_user(db, auth_service.ADMIN)
        reason = "saved login revoked" if saved else "no saved login"
        _, secret = await auth_service.create_token(
            db,
            admin,
            name=f"edgefleet up on {socket.gethostname()} ({reason})"[:128],
            expires_at=None,
        )
    _save_token(settings, secret)
    return secret


def _deploy_demo(url: str, token: str) -> str | None:
    """Create the demo app and a job on the local device (idempotent)."""
    compose = DEMO_COMPOSE.replace("{python}", sys.executable).replace(
        "{page}", json.dumps(DEMO_PAGE)
    )
    with Client(url, token) as client:
        device = next(iter(client.devices(selector="edgefleet-local=true", limit=1)), None)
        if device is None:
            return None
        try:
            client.get(f"/applications/{DEMO_APP}")
        except ClientError:
            client.post(
                "/applications",
                {"project": "default", "name": DEMO_APP, "version": "1", "compose": compose},
            )
        jobs = client.get("/jobs", application=DEMO_APP)["items"]
        live = [j for j in jobs if j["state"] not in ("cancelled", "expired", "completed")]
        if live:
            return str(live[0]["id"])
        job = client.post(
            "/jobs", {"application": DEMO_APP, "version": "1", "devices": [device["id"]]}
        )
        return str(job["id"])


async def _up(settings: ServerSettings, *, demo: bool, runtime: str) -> int:
    announced: list[str] = []
    config = uvicorn_config(settings, announce=announced.append)
    server = uvicorn.Server(config)
    config.install_signal_handlers = False  # type: ignore[attr-defined]
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return 1
        await asyncio.sleep(0.05)
    url = settings.resolved_public_url()
    app: Any = config.app
    ctx: ServerContext = app.state.ctx
    first = next((line.rsplit(" ", 1)[-1] for line in announced if "admin token" in line), None)
    token = await _admin_token(ctx, settings, first)

    agent_dir = settings.data_dir / "agent"
    key = None
    if not (agent_dir / "device.json").exists():
        with Client(url, token) as client:
            key = (
                await asyncio.to_thread(
                    client.create_key,
                    "default",
                    labels={"edgefleet-local": "true"},
                    name="edgefleet up",
                )
            )["key"]
    agent = Agent(
        AgentSettings(
            server=[url],
            provisioning_key=key,
            state_dir=agent_dir,
            name=f"{socket.gethostname()}-local"[:60] if key else None,
            runtime=runtime,
            # The demo is a process service run by whoever ran `edgefleet up`, on
            # their own machine: they are its owner and consent here.
            allow_process=True,
            process_user=pwd.getpwuid(os.geteuid()).pw_name,
        )
    )
    agent_task = asyncio.create_task(agent.run())

    from edgefleet.cli import config as cli_config

    saved = cli_config.save(url, token)
    _say()
    _say("edgefleet is up.")
    _say(f"  portal:       {url}/")
    _say(f"  API docs:     {url}/api/docs")
    _say(f"  admin token:  {token}")
    _say(f"  CLI login saved to {saved}; try: edgefleet devices list")
    if demo:
        job_id = None
        for _ in range(100):
            with contextlib.suppress(ClientError):
                job_id = await asyncio.to_thread(_deploy_demo, url, token)
            if job_id:
                break
            await asyncio.sleep(0.2)
        if job_id:
            _say(f"  demo job:     {job_id}  (edgefleet jobs show {job_id})")
            from edgefleet.server.proxy.origins import app_url

            device_id = agent.identity.device_id if agent.identity else "-"
            # The path works for every client (scripts with the token); a browser
            # is sent from it to the app's own origin, printed too.
            _say(f"  demo app:     {url}/proxy/{job_id}/{device_id}/web/18080/")
            link = app_url(settings, job_id, device_id, "web", 18080)
            if link.startswith("http"):
                _say(f"  in a browser: {link}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    # Said once Ctrl-C is ours: a Ctrl-C right after reading it stops cleanly.
    _say("Press Ctrl-C to stop (workloads keep running).")
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, agent_task, serving}, return_when=asyncio.FIRST_COMPLETED)
    agent.stopping.set()
    try:
        await asyncio.wait_for(agent_task, 10)
    except TimeoutError:
        log.warning("the local agent did not stop within 10 s")
    except AgentError as exc:  # e.g. its enrollment refused: said once, the server still stops
        log.error("the local agent stopped: %s", exc.message)
    server.should_exit = True
    try:
        await asyncio.wait_for(serving, 10)
    except TimeoutError:
        log.warning("the server did not stop within 10 s")
    return 0


def run_up(settings: ServerSettings, *, demo: bool = True, runtime: str = "auto") -> int:
    if settings.log_level == "info":
        # `up` is for a first look: its own summary, not every HTTP request.
        settings = settings.model_copy(update={"log_level": "warning"})
    configure_logging(settings.log_level)
    return asyncio.run(_up(settings, demo=demo, runtime=runtime))
