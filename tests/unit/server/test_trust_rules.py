"""The pure rules behind stream freshness, key labels, proxy trust and NATS redaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from edgefleet.server.auth import secrets
from edgefleet.server.auth.freshness import TokenState, Watched, verdict
from edgefleet.server.auth.freshness_asgi import FreshStreams, credentials
from edgefleet.server.bus.nats import redact
from edgefleet.server.gateway.enrollment_group import label_clashes as _label_clashes
from edgefleet.server.settings import ServerSettings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ADMIN = (True, frozenset[tuple[int, str]]())
MEMBER = (False, frozenset({(1, "operator")}))


async def _watched(*digests: str, registered_at: float = 100.0) -> Watched:
    task = asyncio.current_task()
    assert task is not None
    return Watched(digests, task, registered_at=registered_at)


def _alive(user: int = 7, **changes: object) -> TokenState:
    fields: dict[str, object] = {
        "user_pk": user,
        "revoked": False,
        "expires_at": None,
        "disabled": False,
    }
    fields.update(changes)
    return TokenState(**fields)  # type: ignore[arg-type]


def test_verdict_on_the_token() -> None:
    async def run() -> None:
        w = await _watched("a")
        assert verdict(w, {}, {}, {}, NOW) == "the token was deleted"
        states = {"a": _alive(revoked=True)}
        assert verdict(w, states, {}, {}, NOW) == "the token was revoked"
        states = {"a": _alive(expires_at=NOW - timedelta(seconds=1))}
        assert verdict(w, states, {}, {}, NOW) == "the token expired"
        assert verdict(w, {"a": _alive(disabled=True)}, {}, {}, NOW) == "the user was disabled"
        assert verdict(w, {"a": _alive()}, {7: MEMBER}, {}, NOW) is None
        assert w.baseline == MEMBER

    asyncio.run(run())


def test_verdict_alive_while_one_cookie_is() -> None:
    async def run() -> None:
        w = await _watched("dead-session", "app-cookie")
        states = {"dead-session": _alive(revoked=True), "app-cookie": _alive()}
        assert verdict(w, states, {7: MEMBER}, {}, NOW) is None

    asyncio.run(run())


def test_verdict_on_memberships() -> None:
    async def run() -> None:
        w = await _watched("a")
        states = {"a": _alive()}
        assert verdict(w, states, {7: MEMBER}, {}, NOW) is None
        assert verdict(w, states, {7: MEMBER}, {7: 500.0}, NOW) is None  # baseline holds
        lost = (False, frozenset[tuple[int, str]]())
        assert verdict(w, states, {7: lost}, {}, NOW) == "the user's project memberships changed"
        assert verdict(w, states, {7: ADMIN}, {}, NOW) is not None
        # A change announced after the stream opened but before its first check: it
        # cannot know which rights it was opened with, so it closes.
        fresh = await _watched("a", registered_at=100.0)
        assert verdict(fresh, states, {7: MEMBER}, {7: 100.5}, NOW) is not None
        older = await _watched("a", registered_at=100.0)
        assert verdict(older, states, {7: MEMBER}, {7: 99.0}, NOW) is None

    asyncio.run(run())


def _scope(*headers: tuple[str, str]) -> dict[str, object]:
    return {"headers": [(k.encode(), v.encode()) for k, v in headers]}


def test_credentials_read_like_the_routes() -> None:
    assert credentials(_scope(("authorization", "Bearer eft_x"))) == ("eft_x",)
    # A bearer token wins over cookies, as in every route.
    both = _scope(("authorization", "Bearer eft_x"), ("cookie", "edgefleet_session=s"))
    assert credentials(both) == ("eft_x",)
    cookies = _scope(("cookie", "edgefleet_app=a; other=1; edgefleet_session=s"))
    assert credentials(cookies) == ("s", "a")
    # Device credentials and provisioning keys are the gateway's, not watched here.
    assert credentials(_scope(("authorization", f"Bearer {secrets.DEVICE_PREFIX}x"))) == ()
    assert credentials(_scope(("authorization", f"Bearer {secrets.KEY_PREFIX}x"))) == ()
    assert credentials(_scope(("cookie", 'broken="unterminated'))) == ()
    assert credentials(_scope()) == ()


def test_only_requests_that_can_stream_are_watched() -> None:
    """A scrape may carry the --metrics-token, which is no API token: watched, the
    guard would find it "deleted" and cut the scrape it happened to overlap."""

    class Guard:
        running = True
        seen: list[tuple[str, ...]] = []

        def watch(self, digests: tuple[str, ...], task: object) -> Watched:
            self.seen.append(digests)
            assert isinstance(task, asyncio.Task)
            return Watched(digests, task)

        def forget(self, watched: Watched) -> None:
            pass

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    async def run(path: str) -> None:
        scope = {"type": "http", "path": path, **_scope(("authorization", "Bearer scrape-me"))}
        await FreshStreams(app, Guard())(scope, None, None)  # type: ignore[arg-type]

    asyncio.run(run("/metrics"))
    assert Guard.seen == []
    asyncio.run(run("/api/v1/events"))
    assert Guard.seen == [(secrets.digest("scrape-me"),)]


def test_key_labels_win() -> None:
    key = {"tier": "test", "site": "lab"}
    assert _label_clashes(key, {"tier": "prod", "site": "lab", "extra": "x"}) == ["tier"]
    assert _label_clashes(key, {"tier": "test", "extra": "x"}) == []
    assert _label_clashes({}, {"tier": "prod"}) == []


def test_forwarded_allow_ips_setting() -> None:
    assert ServerSettings().forwarded_allow_ips == "127.0.0.1"
    value = ServerSettings(forwarded_allow_ips=" 10.0.0.5, 10.1.0.0/16 ,").forwarded_allow_ips
    assert value == "10.0.0.5,10.1.0.0/16"
    assert ServerSettings(forwarded_allow_ips="10.0.0.5,*").forwarded_allow_ips == "*"
    assert ServerSettings(forwarded_allow_ips="").forwarded_allow_ips == ""
    with pytest.raises(ValidationError, match="'haproxy' is not an IP address"):
        ServerSettings(forwarded_allow_ips="haproxy")


def test_nats_urls_are_redacted() -> None:
    assert redact("nats://u:p@h:4222") == "nats://***@h:4222"
    assert redact("tls://tok@h1:4222,nats://h2:4222") == "tls://***@h1:4222,nats://h2:4222"
    assert redact("nats://h:4222") == "nats://h:4222"
