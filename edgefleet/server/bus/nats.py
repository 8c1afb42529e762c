"""The NATS bus, for several server replicas (``--bus nats://host:4222``).

Core NATS (no JetStream): at-most-once, ordered per publisher and subject,
which is what the bus promises. Request/reply uses NATS's own inboxes, and
"no responders" comes back at once from the server (NATS >= 2.2), so asking
for a device nobody holds fails fast instead of timing out.

Trust: whoever can publish on the bus can push desired state to any device
and close anyone's streams, so a shared NATS must authenticate its clients.
Supported, all passed to nats-py's ``connect``: ``nats://user:pass@host``,
a token (``--bus-token``), a creds file (``--bus-creds-file``, JWT + nkey;
needs the ``nkeys`` package: ``pip install edgefleet[nats-creds]``), and TLS
(``tls://`` URLs, ``--bus-ca-file``, client certificates with
``--bus-cert-file``/``--bus-key-file``). Credentials never appear in logs.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from edgefleet.server.bus.base import BusError, BusMessage, BusTimeout, Handler, NoResponders

log = logging.getLogger(__name__)

AUTH_ERRORS = ("authorization violation", "authentication", "user authentication expired")


@dataclass(frozen=True)
class NatsOptions:
    """How to reach and prove ourselves to NATS (from ``ServerSettings.bus_*``)."""

    token: str | None = None
    creds_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    connect_timeout: float = 15.0

    def tls_context(self, urls: list[str]) -> ssl.SSLContext | None:
        wants_tls = any(url.startswith("tls://") for url in urls)
        if not (wants_tls or self.ca_file or self.cert_file):
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            if self.cert_file:
                context.load_cert_chain(
                    str(self.cert_file), str(self.key_file) if self.key_file else None
                )
        except (OSError, ssl.SSLError) as exc:
            raise BusError(f"cannot load the NATS TLS files: {exc}") from exc
        return context

    def connect_kwargs(self, urls: list[str]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.token:
            kwargs["token"] = self.token
        if self.creds_file:
            if not self.creds_file.is_file():
                raise BusError(f"NATS creds file {self.creds_file} does not exist")
            import importlib.util

            if importlib.util.find_spec("nkeys") is None:  # nats-py signs with it
                raise BusError(
                    "a NATS creds file needs the nkeys package: pip install 'edgefleet[nats-creds]'"
                )
            kwargs["user_credentials"] = str(self.creds_file)
        tls = self.tls_context(urls)
        if tls is not None:
            kwargs["tls"] = tls
        return kwargs


def redact(url: str) -> str:
    """A NATS URL fit for logs and error messages: no password or token."""
    parts = []
    for one in url.split(","):
        split = urlsplit(one.strip())
        if split.username or split.password:
            host = split.hostname or ""
            netloc = f"***@{host}" + (f":{split.port}" if split.port else "")
            one = urlunsplit(split._replace(netloc=netloc))
        parts.append(one)
    return ",".join(parts)


class _NatsSubscription:
    def __init__(self, sub: Any) -> None:
        self._sub = sub

    async def unsubscribe(self) -> None:
        try:
            await self._sub.unsubscribe()
        except NatsError as exc:  # closed or draining: nothing is delivered any more
            log.warning("unsubscribing from %s: %s", self._sub.subject, exc or type(exc).__name__)


class NatsBus:
    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.options = NatsOptions(**(options or {}))
        self._nc: Any = None
        self._state = "new"  # new -> starting -> up -> closed

    async def start(self) -> None:
        """Connect, or fail within ``connect_timeout`` with a message saying why:
        credentials refused fail at once, an unreachable server after the timeout.
        Once connected, losing NATS means reconnecting forever (logged)."""
        urls = [u.strip() for u in self.url.split(",") if u.strip()]
        shown = redact(self.url)
        deadline = time.monotonic() + self.options.connect_timeout
        last: list[str] = []

        async def on_error(exc: Exception) -> None:
            text = str(exc) or exc.__class__.__name__
            if self._state != "starting":
                log.warning("NATS error: %s", text)
                return
            last[:] = [text]
            if any(marker in text.lower() for marker in AUTH_ERRORS):
                raise BusError(
                    f"NATS at {shown} refused our credentials ({text}); check the user and "
                    "password in --bus, --bus-token or --bus-creds-file"
                )
            if time.monotonic() > deadline:
                raise BusError(f"cannot connect to NATS at {shown}: {text}")

        async def disconnected() -> None:
            if self._state == "up":  # not while closing
                log.warning("lost the NATS connection; reconnecting")

        async def reconnected() -> None:
            log.info("NATS connection restored")

        kwargs = self.options.connect_kwargs(urls)
        self._state = "starting"
        try:
            self._nc = await asyncio.wait_for(
                nats.connect(
                    urls,
                    name="edgefleet-server",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=on_error,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    connect_timeout=min(5.0, self.options.connect_timeout),
                    **kwargs,
                ),
                self.options.connect_timeout + 5,
            )
        except BusError:
            raise
        except TimeoutError:
            why = last[0] if last else "no answer"
            raise BusError(f"cannot connect to NATS at {shown}: {why}") from None
        except (OSError, ssl.SSLError, NatsError) as exc:
            raise BusError(f"cannot connect to NATS at {shown}: {exc}") from exc
        self._state = "up"

    async def close(self) -> None:
        self._state = "closed"
        if self._nc is not None:
            try:
                await self._nc.drain()
            except (NatsError, TimeoutError) as exc:
                log.warning("draining the NATS connection: %s", exc or type(exc).__name__)
            self._nc = None

    async def publish(self, subject: str, data: bytes, reply: str | None = None) -> None:
        try:
            await self._nc.publish(subject, data, reply=reply or "")
        except NatsError as exc:
            raise BusError(f"cannot publish on {subject}: {exc or type(exc).__name__}") from exc

    async def subscribe(
        self, subject: str, handler: Handler, queue: str | None = None
    ) -> _NatsSubscription:
        async def callback(msg: Any) -> None:
            try:
                await handler(BusMessage(msg.subject, msg.data, msg.reply or None))
            except Exception:  # one failing handler must not end the subscription
                log.exception("bus handler failed on %s", msg.subject)

        try:
            sub = await self._nc.subscribe(subject, queue=queue or "", cb=callback)
        except NatsError as exc:
            raise BusError(f"cannot subscribe to {subject}: {exc or type(exc).__name__}") from exc
        return _NatsSubscription(sub)

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        try:
            msg = await self._nc.request(subject, data, timeout=timeout)
        except NoRespondersError:
            raise NoResponders(subject) from None
        except (TimeoutError, NatsTimeout):
            raise BusTimeout(subject) from None
        except NatsError as exc:
            raise BusError(f"cannot ask on {subject}: {exc or type(exc).__name__}") from exc
        return bytes(msg.data)
