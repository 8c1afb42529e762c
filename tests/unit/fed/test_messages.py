"""The binary fields of the messages: strict, padded, standard base64 on the wire,
sizes checked at the boundary (one validator per field)."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from edgefleet.fed.messages import MAX_PARTIES, SHARE_RECORD, AdvertiseKeys, ShareBundle, decode


def advert(**fields: object) -> str:
    body = {
        "type": "fed.advertise",
        "computation_id": "c1",
        "sender": "a",
        "s_public": base64.b64encode(b"\xfb" * 32).decode(),
        "c_public": base64.b64encode(bytes(32)).decode(),
        "tags": {"b": base64.b64encode(b"\xff" * 32).decode()},
    }
    return json.dumps({**body, **fields})


def test_keys_and_tags_round_trip_as_standard_padded_base64() -> None:
    message = decode(advert())
    assert isinstance(message, AdvertiseKeys)
    assert message.s_public == b"\xfb" * 32 and message.tags == {"b": b"\xff" * 32}
    dumped = json.loads(message.model_dump_json())
    assert dumped["s_public"] == base64.b64encode(b"\xfb" * 32).decode()  # "+": not "-"
    assert dumped["tags"]["b"] == base64.b64encode(b"\xff" * 32).decode()  # "/": not "_"
    assert decode(message.model_dump_json()) == message


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("s_public", base64.b64encode(bytes(31)).decode(), "expected 32 bytes, got 31"),
        ("c_public", base64.b64encode(bytes(33)).decode(), "expected 32 bytes, got 33"),
        ("c_public", base64.urlsafe_b64encode(b"\xfb" * 32).decode(), "invalid base64"),
        ("c_public", base64.b64encode(bytes(32)).decode().rstrip("="), "invalid base64"),
        ("c_public", 12, "expected base64 text"),
    ],
)
def test_a_wrong_key_is_refused_naming_why(field: str, value: object, error: str) -> None:
    with pytest.raises(ValidationError) as refused:
        decode(advert(**{field: value}))
    assert error in str(refused.value)


def test_share_records_are_bounded() -> None:
    most = MAX_PARTIES * SHARE_RECORD
    bundle = ShareBundle(
        computation_id="c1", sender="a", shares=bytes(most), self_mask_commitment=bytes(32)
    )
    assert len(decode(bundle.model_dump_json()).shares) == most  # type: ignore[union-attr]
    over = json.loads(bundle.model_dump_json())
    over["shares"] = base64.b64encode(bytes(most + 1)).decode()
    with pytest.raises(ValidationError, match=f"at most {most} bytes"):
        decode(json.dumps(over))
