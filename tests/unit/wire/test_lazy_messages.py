"""The federated message is joined to the protocol's union only when needed:
an idle agent never loads the fed protocol's models (issue 18), and the first
``fed`` frame it receives loads them by itself."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.procs import base_env

FED_FRAME = json.dumps(
    {"type": "fed", "payload": {"type": "fed.abort", "computation_id": "c1", "reason": "r"}}
)

SCRIPT = f"""
import sys
from edgefleet.wire.messages import decode, Heartbeat
assert isinstance(decode('{{"type": "heartbeat"}}'), Heartbeat)
print(sorted(m for m in sys.modules if m.startswith("edgefleet.fed")))
message = decode({FED_FRAME!r})
print(type(message).__name__, type(message.payload).__name__, message.payload.reason)
print("edgefleet.fed.messages" in sys.modules)
try:
    decode('{{"type": "nonsense"}}')
except ValueError as exc:
    print(type(exc).__name__)
"""


def test_the_fed_models_load_with_the_first_fed_frame_and_not_before() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=base_env(), timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "FedRelay Abort r", "True", "ProtocolError"]
