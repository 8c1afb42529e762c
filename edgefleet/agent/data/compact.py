"""Compact JSON text (``separators=(",", ":")``, ``ensure_ascii=False``) for
the data endpoint's hot path: a record compacted once per POST, a journal
entry encoded once per group commit.

``json.JSONEncoder.encode`` builds its C encoder, and a closure, on every
call; for a 100-byte record that setup costs twice the encoding itself. The
encoder here is built once and called directly. It skips the circular
reference check, which only a Python object graph could need: what it
encodes is JSON just decoded, or lists of strings and numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _json_encoder
from typing import Any


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def compact_encoder(allow_nan: bool) -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False,
    allow_nan=allow_nan)`` for acyclic values, the same text (ValueError for
    NaN or infinity unless ``allow_nan``)."""
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the standard encoder
        return json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan
        ).encode
    encode = make(
        None, _refuse, _json_encoder.encode_basestring, None, ":", ",", False, False, allow_nan
    )

    def compact(value: Any) -> str:
        return "".join(encode(value, 0))

    return compact
