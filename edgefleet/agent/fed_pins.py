"""Trust on first use for federated peers: the long-term X25519 key this device
saw for each peer it computed with, so that a server that swaps a peer's key
(to sit in the middle of the pairwise channels) is refused.

The protocol authenticates every ephemeral key with a MAC keyed by
ECDH(long-term u, long-term v), but the long-term keys themselves come from the
server's invitation. Pinning closes that gap after the first computation: from
then on the server cannot substitute a key for a known peer.

File: ``<state-dir>/fed-peers.json``, mode 0600, written atomically::

    {"version": 1, "peers": {"<device id>": "<base64 public key>", ...}}

A changed key declines the computation with a reason naming the peer. When a
peer was legitimately re-enrolled, the operator forgets its pin with the agent
flag ``--fed-repin DEVICE_ID`` (repeatable; ``all`` forgets every pin); the next
computation pins the new key.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from edgefleet.agent.state import atomic_write

log = logging.getLogger("edgefleet.agent.fed")

FILE = "fed-peers.json"
MAX_PINS = 100_000  # a file larger than this many peers is refused, not parsed further


class PinError(Exception):
    """The pin file is unreadable or malformed; federated computations are declined."""


class PeerPins:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE

    def load(self) -> dict[str, bytes]:
        if not self.path.exists():
            return {}
        try:
            document = json.loads(self.path.read_text())
            peers = document["peers"]
            if document.get("version") != 1 or not isinstance(peers, dict):
                raise PinError(f"{self.path}: unknown format")
            if len(peers) > MAX_PINS:
                raise PinError(f"{self.path}: more than {MAX_PINS} pins")
            return {str(p): base64.b64decode(k, validate=True) for p, k in peers.items()}
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise PinError(f"{self.path}: {exc}") from exc

    def save(self, pins: Mapping[str, bytes]) -> None:
        peers = {p: base64.b64encode(k).decode() for p, k in sorted(pins.items())}
        data = json.dumps({"version": 1, "peers": peers}, indent=1).encode()
        atomic_write(self.path, data, 0o600, durable=False)  # a lost pin is pinned again

    def check(self, peers: Mapping[str, bytes]) -> str | None:
        """Pin the peers seen for the first time; the reason to decline if a pinned
        peer now shows another key (nothing is pinned then)."""
        try:
            pins = self.load()
        except PinError as exc:
            return f"the peer key pins cannot be read ({exc})"
        changed = sorted(p for p, key in peers.items() if p in pins and pins[p] != key)
        if changed:
            shown = ", ".join(changed[:3]) + (" and others" if len(changed) > 3 else "")
            return (
                f"the long-term key of peer {shown} differs from the one pinned on first "
                "sight; if that device was re-enrolled, restart this agent with "
                f"--fed-repin {changed[0]}"
            )
        new = {p: key for p, key in peers.items() if p not in pins}
        if new:
            self.save({**pins, **new})
        return None

    def forget(self, peers: Iterable[str]) -> list[str]:
        """Drop the pins of ``peers`` (``all``: every pin); returns what was dropped."""
        wanted = set(peers)
        if not wanted:
            return []
        pins = self.load()
        gone = sorted(pins) if "all" in wanted else sorted(wanted & set(pins))
        if gone:
            self.save({p: k for p, k in pins.items() if p not in gone})
            log.warning("forgot the pinned federated keys of %s", ", ".join(gone))
        return gone
