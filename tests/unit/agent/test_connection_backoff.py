import random

from edgefleet.agent.connection import Backoff, ws_url


def test_full_jitter_grows_to_the_cap_and_resets() -> None:
    backoff = Backoff(base=1, cap=60, rng=random.Random(7))
    ceilings = []
    for _ in range(10):
        ceilings.append(min(60, 2**backoff.attempt))
        delay = backoff.next_delay()
        assert 0 <= delay <= ceilings[-1]
    assert ceilings[-1] == 60
    backoff.reset()
    assert backoff.next_delay() <= 1


def test_websocket_url_follows_the_scheme() -> None:
    assert ws_url("https://fleet.example.org") == "wss://fleet.example.org/api/v1/agent/connect"
    assert ws_url("http://127.0.0.1:8400/") == "ws://127.0.0.1:8400/api/v1/agent/connect"
