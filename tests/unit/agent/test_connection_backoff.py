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


def test_busy_refusals_keep_the_servers_wait_and_spread_growing_but_capped() -> None:
    """A server (or a proxy) that keeps refusing with "1 s": every wait is at least
    that, the jitter on top grows with each refusal in a row up to a quarter of the
    cap, and a welcome starts it over. The failure count is untouched: the agent
    keeps its server and never treats a refusal as a reason to give up."""
    backoff = Backoff(cap=20, rng=random.Random(3))
    delays = [backoff.after_refusal(1.0) for _ in range(40)]
    assert all(1.0 <= d <= 1.25 + 5.0 for d in delays)
    assert backoff.attempt == 0 and backoff.refusals == 30
    early, late = max(delays[:3]), max(delays[-20:])
    assert early <= 1.25 + 1.0  # spreads of 0.25, 0.5, 1 s
    assert late > 3.0  # the spread reached its cap of 5 s
    backoff.reset()
    assert backoff.after_refusal(1.0) <= 1.25 + 0.25
    assert backoff.after_refusal(30.0) >= 30.0  # a booked slot is never cut short


def test_the_failure_cap_bounds_the_wait_after_a_restart() -> None:
    backoff = Backoff(rng=random.Random(5))
    assert backoff.cap == 20
    assert max(backoff.next_delay() for _ in range(200)) <= 20
