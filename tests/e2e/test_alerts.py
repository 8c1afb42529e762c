"""Alerts delivered to a real webhook receiver (issue 18): an agent process is
killed, the offline rule fires and the receiver gets one signed ``firing``
message, even though it answered 500 at first (retried); the agent comes
back and one ``resolved`` message follows. No duplicates, signatures checked
with the secret shown once at creation."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, wait_for

FAST = [
    "--alert-interval",
    "0.3",
    "--alert-webhook-allow-loopback",
    "--alert-webhook-backoff",
    "0.2",
]


class Receiver:
    """A webhook receiver on loopback: records every request, fails the first ``fail`` ones."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 500 if receiver.fail > 0 else 204
                receiver.fail -= 1
                receiver.calls.append(
                    ({k.lower(): v for k, v in self.headers.items()}, body, status)
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b, status in self.calls if status == 204]


def cli_env(server: Any) -> dict[str, str]:
    return dict(os.environ, EDGEFLEET_SERVER=server.url, EDGEFLEET_TOKEN=ADMIN_TOKEN)


def cli(server: Any, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", *args],
        env=cli_env(server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=2)
    yield r
    r.http.shutdown()
    r.http.server_close()


def test_killed_agent_fires_a_signed_alert_and_its_return_resolves_it(
    fleet: Fleet, database_url: str | None, receiver: Receiver
) -> None:
    server = fleet.start_server(extra_args=FAST)
    made = cli(server, "alerts", "webhooks", "add", "ops", receiver.url, "-o", "json")
    secret = made["secret"]
    rule = cli(
        server,
        "alerts",
        "rules",
        "add",
        "gone",
        "--kind",
        "device_offline",
        "--for",
        "1",
        "-o",
        "json",
    )
    assert rule["kind"] == "device_offline" and rule["for_seconds"] == 1
    refused = subprocess.run(
        [sys.executable, "-m", "edgefleet", "alerts", "webhooks", "add", "x", "http://10.9.9.9/"],
        env=cli_env(server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        refused.returncode != 0
        and "webhook URL" in refused.stderr
        and "Traceback" not in refused.stderr
    )
    agent = fleet.start_agent("pi")
    device = agent.wait_enrolled()
    with server.client() as client:
        wait_for(lambda: client.device(device)["is_online"], 30, what="device online")

    killed = time.monotonic()
    agent.kill()
    wait_for(lambda: receiver.accepted(), 30, what="firing message")
    took = time.monotonic() - killed
    print(f"kill -> signed firing message accepted: {took:.1f} s (for_seconds=1, two 500s first)")
    assert took < 15
    firing_headers, _firing_body = receiver.accepted()[0]
    assert [s for _h, _b, s in receiver.calls][:3] == [500, 500, 204]  # retried after 500s
    assert len({b for _h, b, _s in receiver.calls}) == 1  # the same message each try

    agent.start()
    wait_for(lambda: len(receiver.accepted()) >= 2, 40, what="resolved message")

    messages = []
    for headers, body in receiver.accepted():
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-edgefleet-signature"] == f"sha256={expected}"
        messages.append(json.loads(body))
    assert [m["status"] for m in messages] == ["firing", "resolved"]
    assert messages[0]["alert"]["subject"] == f"device:{device}"
    assert messages[0]["alert"]["labels"]["device_name"] == "pi"
    assert messages[0]["alert"]["rule_name"] == "gone"
    assert messages[1]["alert"]["resolved_at"] is not None
    assert firing_headers["x-edgefleet-event"] == "firing"

    listed = cli(server, "alerts", "list", "-o", "json")
    assert [a["state"] for a in listed] == ["resolved"]
    hooks = cli(server, "alerts", "webhooks", "list", "-o", "json")
    assert [h["name"] for h in hooks] == ["ops"] and "secret" not in hooks[0]
    # no further messages after a few more evaluation passes
    time.sleep(1.5)
    assert len(receiver.accepted()) == 2
