"""The hot path's compact JSON encoder writes exactly what json.dumps writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgefleet.agent.data.compact import compact_encoder

VALUES: list[Any] = [
    {"n": 1, "pad": "x" * 80},
    {
        "é": "ünïcødé ✓ \U0001f600",
        "q": 'quote " back \\ slash \n\t\x01',
        "nested": [1, {"a": None}],
    },
    {"f": 0.1, "e": 1e300, "neg": -0.0, "big": 10**40, "t": True, "f2": False, "empty": {}},
    [1.5, "s", [[], {}]],
    "text",
    12,
]


@pytest.mark.parametrize("value", VALUES)
def test_the_same_text_as_json_dumps(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert compact_encoder(allow_nan=False)(value) == expected
    assert compact_encoder(allow_nan=True)(value) == expected


def test_infinity_is_refused_unless_allowed() -> None:
    with pytest.raises(ValueError):
        compact_encoder(allow_nan=False)({"a": float("inf")})
    assert compact_encoder(allow_nan=True)([float("inf")]) == "[Infinity]"
    with pytest.raises(TypeError):
        compact_encoder(allow_nan=True)({"a": object()})
