"""The ASGI side of :mod:`edgefleet.server.auth.freshness`: watch every user
request, and when the guard cancels one, end it the way its protocol expects.

- WebSocket: close code 1008 (policy violation) with the reason, also when the
  route's own cleanup tries to close with another code.
- HTTP, response not started: 401 in the API's error shape.
- HTTP, response streaming: an SSE stream gets ``event: error`` with the
  reason, then every response ends cleanly (the last chunk), so clients see
  the end of the stream, not a broken connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from http.cookies import CookieError, SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgefleet.server.auth import secrets
from edgefleet.server.auth.freshness import (
    POLICY_VIOLATION,
    UNWATCHED_PREFIXES,
    StreamGuard,
    Watched,
)
from edgefleet.server.deps import SECURE_SESSION_COOKIE, SESSION_COOKIE
from edgefleet.server.proxy.routes import APP_COOKIE

COOKIES = (SECURE_SESSION_COOKIE, SESSION_COOKIE, APP_COOKIE)  # the order routes try them

UNWATCHED_PATHS = (
    "/api/v1/agent/",  # device credentials: the gateway's business
    # Single sign-on's steps use no credential the browser already holds; a dead session
    # cookie they carry must not end the sign-in that changes that user's roles.
    "/auth/oidc/",
    "/api/v1/auth/oidc",
    # A scrape is one short answer, often made with the --metrics-token, which is no
    # API token: the guard would find it "deleted" and cut a scrape it overlapped.
    "/metrics",
)


def credentials(scope: Scope) -> tuple[str, ...]:
    """The secrets a route could authenticate this request with, in the order
    routes try them: a bearer token alone, else the portal and app cookies."""
    bearer = ""
    cookie_header = ""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            bearer = value.decode("latin-1")
        elif name == b"cookie":
            cookie_header = value.decode("latin-1")
    scheme, _, token = bearer.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        token = token.strip()
        return () if token.startswith(UNWATCHED_PREFIXES) else (token,)
    if not cookie_header:
        return ()
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return ()
    return tuple(jar[name].value for name in COOKIES if name in jar)


class FreshStreams:
    def __init__(self, app: ASGIApp, guard: StreamGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.guard.running:
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        found = () if path.startswith(UNWATCHED_PATHS) else credentials(scope)
        task = asyncio.current_task()
        if not found or task is None:
            await self.app(scope, receive, send)
            return
        watched = self.guard.watch(tuple(secrets.digest(s) for s in found), task)
        ending = _Ending(scope["type"], send, watched)
        try:
            await self.app(scope, receive, ending.send)
        except asyncio.CancelledError:
            if watched.reason is None:
                raise  # a real cancellation (shutdown, client gone)
            task.uncancel()
            with contextlib.suppress(OSError):  # the client left meanwhile
                await ending.finish()
        finally:
            self.guard.forget(watched)


class _Ending:
    """Tracks what the route has sent, so the request can be ended properly."""

    def __init__(self, kind: str, send: Send, watched: Watched) -> None:
        self.kind = kind
        self._send = send
        self.watched = watched
        self.started = False
        self.ended = False
        self.event_stream = False

    @property
    def reason(self) -> str:
        return f"closed: {self.watched.reason}"

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.watched.reason is not None and self.kind == "websocket":
            if kind == "websocket.close":
                message = {"type": kind, "code": POLICY_VIOLATION, "reason": self.reason[:120]}
            elif kind != "websocket.accept":
                return  # nothing more reaches a client whose rights are gone
        if kind in ("http.response.start", "websocket.accept"):
            self.started = True
            if kind == "http.response.start":
                self.event_stream = _content_type(message).startswith(b"text/event-stream")
        elif (kind == "http.response.body" and not message.get("more_body")) or kind in (
            "websocket.close",
            "websocket.http.response.start",
        ):
            self.ended = True
        await self._send(message)

    async def finish(self) -> None:
        if self.ended:
            return
        self.ended = True
        if self.kind == "websocket":
            await self._send(
                {"type": "websocket.close", "code": POLICY_VIOLATION, "reason": self.reason[:120]}
            )
            return
        if not self.started:
            body = json.dumps(
                {
                    "detail": self.reason,
                    "error": {"code": "unauthorized", "message": self.reason},
                }
            ).encode()
            await self._send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await self._send({"type": "http.response.body", "body": body})
            return
        if self.event_stream:
            line = f"event: error\ndata: {json.dumps({'error': self.reason})}\n\n".encode()
            await self._send({"type": "http.response.body", "body": line, "more_body": True})
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


def _content_type(message: Message) -> bytes:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value)
    return b""
