"""How the device reads an engine's push answer (edgefleet.agent.saves): Docker
Engine's per-layer progress relayed, the digest taken from the last line (or
``aux``), and an error line raised as the engine's own words."""

from __future__ import annotations

from typing import Any

import pytest

from edgefleet.agent.saves import SaveFailed, _follow, _from_repo_digests
from edgefleet.wire.saves import SaveEvent

DIGEST = "sha256:" + "ab" * 32


def test_docker_progress_relayed_and_digest_found() -> None:
    answer: list[dict[str, Any]] = [
        {"status": "The push refers to repository [reg:5000/p/app]"},
        {"status": "Preparing", "id": "aaaaaaaaaaaa", "progressDetail": {}},
        {"status": "Pushing", "id": "aaaaaaaaaaaa", "progressDetail": {"current": 512, "total": 2048}},
        {"status": "Pushed", "id": "aaaaaaaaaaaa", "progressDetail": {}},
        {"status": f"2: digest: {DIGEST} size: 528"},
        {"progressDetail": {}, "aux": {"Tag": "2", "Digest": DIGEST, "Size": 528}},
    ]  # fmt: skip
    seen: list[SaveEvent] = []
    assert _follow(iter(answer), seen.append) == DIGEST
    pushing = [e for e in seen if e.status == "Pushing"]
    assert pushing == [SaveEvent(status="Pushing", layer="aaaaaaaaaaaa", current=512, total=2048)]


def test_podman_two_lines() -> None:
    answer = [
        {"status": "The push refers to repository [127.0.0.1:5000/p/app:2]"},
        {"status": f"2: digest: {DIGEST} size: 348"},
    ]
    assert _follow(iter(answer), lambda e: None) == DIGEST


def test_engine_error_raised_in_its_words() -> None:
    answer = [
        {"status": "Preparing", "id": "aaaaaaaaaaaa"},
        {"error": "unauthorized: authentication required", "errorDetail": {"message": "x"}},
    ]
    with pytest.raises(SaveFailed, match="unauthorized: authentication required"):
        _follow(iter(answer), lambda e: None)


def test_repo_digest_matches_only_its_repository() -> None:
    found = [f"other/repo@{DIGEST}", f"reg:5000/p/app@{DIGEST}"]
    assert _from_repo_digests(found, "reg:5000/p/app") == DIGEST
    assert _from_repo_digests([f"other/repo@{DIGEST}"], "reg:5000/p/app") is None
