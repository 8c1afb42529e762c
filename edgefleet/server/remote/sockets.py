"""The first steps every remote-access WebSocket takes (interactive exec, port
forwarding): authenticate the caller, find what they asked for with the right
they need, and otherwise tell them why not after the handshake (closing before
it would leave the client a bare 403)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import WebSocket
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import websocket_caller
from edgefleet.server.errors import ApiError

T = TypeVar("T")
Session = AsyncSession
"""What ``find`` is given: the database session of the socket's first steps
(named here so route modules need not import SQLAlchemy)."""
Deny = Callable[[WebSocket, ApiError], Awaitable[None]]
"""How a route tells a refusal: exec sends a control frame first, forwarding
only a close code (its client reads nothing else)."""


@dataclass(frozen=True)
class Authorized(Generic[T]):
    ctx: ServerContext
    caller: Caller
    target: T


async def authorize(
    websocket: WebSocket,
    find: Callable[[Session, Caller], Awaitable[T]],
    deny: Deny,
) -> Authorized[T] | None:
    """The caller and ``find``'s target; ``None`` once the socket has been told
    why not (not signed in: by :func:`~edgefleet.server.deps.websocket_caller`;
    refused by ``find``: by ``deny``)."""
    ctx: ServerContext = websocket.app.state.ctx
    async with ctx.session() as db:
        caller = await websocket_caller(websocket, db)
        if caller is None:
            return None
        try:
            return Authorized(ctx, caller, await find(db, caller))
        except ApiError as exc:
            await deny(websocket, exc)
            return None
