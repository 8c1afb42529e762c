"""Signing and retry timing of webhook messages."""

from __future__ import annotations

import hashlib
import hmac
import random

from edgefleet.server.alerts.delivery import delay, sign


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"status":"firing"}'
    expected = hmac.new(b"whsec_k", body, hashlib.sha256).hexdigest()
    assert sign("whsec_k", body) == f"sha256={expected}"
    assert sign("whsec_k", body + b" ") != sign("whsec_k", body)


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for attempt in range(1, 8):
        base = 2.0 * 2 ** (attempt - 1)
        for _ in range(50):
            assert 0.5 * base <= delay(2.0, attempt, rng) < 1.5 * base
    assert delay(2.0, 40, rng) == 3600.0
    assert len({round(delay(1.0, 3, rng), 6) for _ in range(20)}) > 1  # jittered
