"""HTTP/1.1 to the app over a stream, with streaming bodies both ways.

One stream per request (``Connection: close``): simple, no pooling state to
go stale when a device reconnects, and the per-stream flow control keeps a
large download from starving anything else on the agent's connection.

A request costs one round trip to the agent, not two: its head (and the end
of a body-less request) travels right behind the stream's OPEN
(:meth:`Exchange.start`), before the agent has connected to the app. An
answer of up to :data:`WHOLE_BODY` bytes is collected and sent as one plain
response (no streaming machinery, no extra frames); a larger one is streamed,
and only then is the stream's window widened to :data:`DOWNLOAD_WINDOW`, so a
download is not held to 256 KiB per round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

import h11
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket

from edgefleet.server.errors import BadGateway, GatewayTimeout
from edgefleet.wire.mux import BULK_FRAME, Stream, StreamError

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
RESPONSE_TIMEOUT = 120.0
DOWNLOAD_WINDOW = 2 * 1024 * 1024
"""What the agent may send ahead of the client's reading: enough for ~1 GB/s
over a 2 ms round trip; the most a slow client makes this replica buffer."""
WHOLE_BODY = 64 * 1024
"""An answer declaring at most this many bytes is read whole before it is sent
on (within the stream's initial window, so no credit needs to flow back)."""

SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
"""Added to every response served on the portal's origin (path mode): the page
runs in an opaque origin (no ``allow-same-origin``), so its script can neither
read the portal nor send requests that carry the portal's cookies."""

PORTAL_ORIGIN_DROPPED = {
    "set-cookie",
    "set-cookie2",
    "clear-site-data",
    "service-worker-allowed",
    "strict-transport-security",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-allow-private-network",
    "access-control-expose-headers",
    "access-control-max-age",
}
"""Headers an app may not send on the portal's origin: they would set or clear
the portal's cookies and storage, or open it to other origins."""

APP_HOST_DROPPED = {"set-cookie2", "clear-site-data"}
"""On an app's own host: ``Clear-Site-Data: "cookies"`` reaches the whole site."""

RESERVED_COOKIE = "edgefleet_"
"""Cookies named like edgefleet's own (``edgefleet_session``, ``__Host-edgefleet_…``)
are never set by an app, whatever its host."""


WEBSOCKET_OWN = {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "sec-websocket-accept",
}


def request_headers(
    request: Request, prefix: str, *, strip_cookies: set[str], strip_authorization: bool
) -> list[tuple[str, str]]:
    client = request.client.host if request.client else ""
    headers = forward_headers(
        request.headers.items(),
        client,
        request.url.scheme,
        prefix,
        strip_cookies=strip_cookies,
        strip_authorization=strip_authorization,
    )
    return [
        *headers,
        ("Host", request.headers.get("host", "") or "localhost"),
        ("Connection", "close"),
    ]


def request_headers_ws(
    websocket: WebSocket, prefix: str, *, strip_cookies: set[str], strip_authorization: bool
) -> list[tuple[str, str]]:
    """Headers for the app's WebSocket handshake (wsproto adds Host, Upgrade and the keys)."""
    client = websocket.client.host if websocket.client else ""
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    items = [(k, v) for k, v in websocket.headers.items() if k.lower() not in WEBSOCKET_OWN]
    return forward_headers(
        items,
        client,
        scheme,
        prefix,
        strip_cookies=strip_cookies,
        strip_authorization=strip_authorization,
    )


def forward_headers(
    items: Iterable[tuple[str, str]],
    client: str,
    scheme: str,
    prefix: str,
    *,
    strip_cookies: set[str],
    strip_authorization: bool,
) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop ones and edgefleet's own
    credentials, plus the usual X-Forwarded-* set."""
    headers: list[tuple[str, str]] = []
    host = ""
    forwarded_for = None
    for name, value in items:
        lower = name.lower()
        if lower == "host":
            host = value
        if lower == "x-forwarded-for":
            forwarded_for = value
            continue
        if lower in HOP_BY_HOP:
            continue
        if lower == "authorization" and strip_authorization:
            continue
        if lower == "cookie":
            kept = [
                part.strip()
                for part in value.split(";")
                if part.strip() and part.split("=", 1)[0].strip() not in strip_cookies
            ]
            if not kept:
                continue
            value = "; ".join(kept)
        headers.append((name, value))
    headers += [
        ("X-Forwarded-For", f"{forwarded_for}, {client}" if forwarded_for else client),
        ("X-Forwarded-Proto", scheme),
        ("X-Forwarded-Host", host),
    ]
    if prefix:
        headers.append(("X-Forwarded-Prefix", prefix))
    return headers


def _rewrite_location(value: str, prefix: str) -> str:
    if (
        prefix
        and value.startswith("/")
        and not value.startswith("//")
        and not value.startswith(prefix + "/")
    ):
        return prefix + value
    return value


def response_headers_for(
    headers: Iterable[tuple[str, str]], prefix: str, *, portal_origin: bool
) -> list[tuple[str, str]]:
    """The app's response headers as the browser may see them.

    On the portal's origin: no cookies, no storage clearing, no CORS grants, and
    a ``sandbox`` CSP so the page's script runs in an opaque origin. On an app's
    own host: its cookies pass, except those with a ``Domain`` (which could cover
    the portal's host) or an edgefleet cookie's name.
    """
    kept: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP - {"content-length"}:
            continue
        if portal_origin and lower in PORTAL_ORIGIN_DROPPED:
            continue
        if not portal_origin and lower in APP_HOST_DROPPED:
            continue
        if lower == "set-cookie" and not app_cookie_allowed(value):
            continue
        if lower == "location":
            value = _rewrite_location(value, prefix)
        kept.append((name, value))
    if portal_origin:
        kept.append(("Content-Security-Policy", SANDBOX))
    return kept


def app_cookie_allowed(set_cookie: str) -> bool:
    """A ``Set-Cookie`` an app on its own host may send: host-only, not edgefleet's."""
    pair, _, attributes = set_cookie.partition(";")
    name = pair.split("=", 1)[0].strip().lower()
    if name.startswith(("__host-", "__secure-")):
        name = name.split("-", 1)[1]
    if name.startswith(RESERVED_COOKIE):
        return False
    return not any(
        part.split("=", 1)[0].strip().lower() == "domain" for part in attributes.split(";")
    )


class Exchange:
    """One proxied request: :meth:`start` sends its head with the stream's open,
    :meth:`relay` sends its body and answers with the app's response.
    ``portal_origin`` when it is served on the portal's own host (path mode),
    which sandboxes the answer (:func:`response_headers_for`)."""

    def __init__(
        self,
        request: Request,
        target: str,
        prefix: str,
        *,
        strip_cookies: set[str],
        strip_authorization: bool,
        portal_origin: bool,
    ) -> None:
        self.request = request
        self.prefix = prefix
        self.portal_origin = portal_origin
        self.conn = h11.Connection(h11.CLIENT)
        headers = request_headers(
            request, prefix, strip_cookies=strip_cookies, strip_authorization=strip_authorization
        )
        length = request.headers.get("content-length")
        self.has_body = request.method not in ("GET", "HEAD", "OPTIONS") or bool(length)
        if length is not None:
            headers.append(("Content-Length", length))
        elif self.has_body:
            headers.append(("Transfer-Encoding", "chunked"))
        head = self.conn.send(h11.Request(method=request.method, target=target, headers=headers))
        if not self.has_body:
            head = (head or b"") + (self.conn.send(h11.EndOfMessage()) or b"")
        self.head = head or b""

    async def start(self, stream: Stream) -> None:
        """Before the agent answers the open: send the head."""
        await stream.send(self.head, frame_size=BULK_FRAME)

    async def _send_body(self, stream: Stream) -> None:
        conn = self.conn
        with contextlib.suppress(StreamError, h11.LocalProtocolError):
            async for chunk in self.request.stream():
                if chunk:
                    await stream.send(conn.send(h11.Data(data=chunk)) or b"", BULK_FRAME)
            await stream.send(conn.send(h11.EndOfMessage()) or b"")

    async def _next_event(
        self, stream: Stream
    ) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await stream.recv()
            conn.receive_data(data or b"")

    async def relay(self, stream: Stream) -> Response:
        """The app's response, streamed; raises BadGateway or GatewayTimeout."""
        sender = asyncio.create_task(self._send_body(stream)) if self.has_body else None

        async def fail(reason: str) -> None:
            if sender is not None:
                sender.cancel()
            await stream.reset(reason)

        try:
            async with asyncio.timeout(RESPONSE_TIMEOUT):  # no task per request, as wait_for makes
                event = await self._next_event(stream)
        except TimeoutError:
            await fail("no response")
            raise GatewayTimeout(f"the app did not answer within {RESPONSE_TIMEOUT:g} s") from None
        except (h11.RemoteProtocolError, StreamError) as exc:
            await fail("bad response")
            raise BadGateway(f"the app's answer was not valid HTTP: {exc}") from None
        if not isinstance(event, h11.Response):
            await fail("bad response")
            raise BadGateway("the app closed the connection without answering")

        response_headers = response_headers_for(
            [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers],
            self.prefix,
            portal_origin=self.portal_origin,
        )

        raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers
        ]
        arrived, complete = self._arrived()
        declared = _content_length(event.headers)
        if not complete and declared is not None and declared <= WHOLE_BODY:
            try:
                async with asyncio.timeout(RESPONSE_TIMEOUT):
                    complete = await self._rest(stream, arrived)
            except TimeoutError:
                await fail("no response")
                raise GatewayTimeout(
                    f"the app did not finish its answer within {RESPONSE_TIMEOUT:g} s"
                ) from None
            except (h11.RemoteProtocolError, StreamError) as exc:
                await fail("bad response")
                raise BadGateway(f"the app's answer was cut short: {exc}") from None
        if complete:  # a small answer: no streaming machinery
            if sender is not None:
                sender.cancel()
            await stream.reset("done")  # idempotent; never raises
            response = Response(b"".join(arrived), status_code=event.status_code)
            response.raw_headers = raw_headers
            return response

        await stream.widen(DOWNLOAD_WINDOW)

        async def body() -> AsyncIterator[bytes]:
            try:
                for chunk in arrived:
                    yield chunk
                while True:
                    item = await self._next_event(stream)
                    if isinstance(item, h11.Data):
                        yield bytes(item.data)
                    elif isinstance(item, (h11.EndOfMessage, h11.ConnectionClosed)):
                        return
            except (StreamError, h11.RemoteProtocolError):
                return
            finally:
                if sender is not None:
                    sender.cancel()
                if not stream.closed:
                    await stream.reset("done")  # idempotent; never raises

        response = StreamingResponse(body(), status_code=event.status_code)
        response.raw_headers = raw_headers
        return response

    async def _rest(self, stream: Stream, chunks: list[bytes]) -> bool:
        """Read the rest of a small answer into ``chunks``; whether it ended
        (not: the app closed without finishing it)."""
        while True:
            event = await self._next_event(stream)
            if isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            else:
                return isinstance(event, h11.EndOfMessage)

    def _arrived(self) -> tuple[list[bytes], bool]:
        """The body already received with the head, and whether it is all of it
        (no await: only what h11 holds). A broken one is left to the stream."""
        chunks: list[bytes] = []
        try:
            while True:
                event = self.conn.next_event()
                if isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                else:
                    return chunks, isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed))
        except h11.RemoteProtocolError:
            return chunks, False


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The answer's declared length (h11 has checked it is one number), if any."""
    for name, value in headers:
        if name == b"content-length":
            return int(value)
    return None
