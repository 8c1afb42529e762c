"""Which proxy the agent's WebSocket takes from the environment (agent/websocket/proxy.py)."""

from __future__ import annotations

import os

import pytest

from edgefleet.agent.websocket.proxy import proxy_for


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_no_proxy_variable_means_direct(no_proxies: pytest.MonkeyPatch) -> None:
    no_proxies.setenv("EDGEFLEET_PROXYISH", "http://127.0.0.1:1")  # not a *_proxy name
    assert proxy_for("server.example", 80, secure=False) is None


def test_an_empty_proxy_variable_means_direct(no_proxies: pytest.MonkeyPatch) -> None:
    no_proxies.setenv("http_proxy", "")
    assert proxy_for("server.example", 80, secure=False) is None


def test_a_proxy_variable_in_any_case_is_seen(no_proxies: pytest.MonkeyPatch) -> None:
    no_proxies.setenv("Http_Proxy", "http://127.0.0.1:3128")
    assert proxy_for("server.example", 80, secure=False) == "http://127.0.0.1:3128"
    assert proxy_for("server.example", 443, secure=True) is None  # http_proxy is not for wss
    no_proxies.setenv("HTTPS_PROXY", "http://127.0.0.1:3129")
    assert proxy_for("server.example", 443, secure=True) == "http://127.0.0.1:3129"


def test_no_proxy_is_honoured(no_proxies: pytest.MonkeyPatch) -> None:
    no_proxies.setenv("http_proxy", "http://127.0.0.1:3128")
    no_proxies.setenv("no_proxy", "server.example")
    assert proxy_for("server.example", 80, secure=False) is None
