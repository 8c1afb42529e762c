"""What the server stores of an uploaded record, and how it writes it out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from edgefleet.server.data.records import (
    RecordError,
    canonical,
    check,
    check_sized,
    decode,
    line,
    sized,
)
from edgefleet.wire.messages import DataRecord

LIMITS = {"max_bytes": 1024, "max_depth": 8}


def record(text: str, **fields: object) -> DataRecord:
    base: dict[str, object] = {"job": "j1", "stream": "s", "seq": 1, "time": 1.7e9, "record": text}
    base.update(fields)
    return DataRecord.model_validate(base)


def test_a_valid_object_is_stored_as_the_servers_own_encoding() -> None:
    assert check(record('{ "b" : 1, "a": "x" }'), **LIMITS) == '{"b":1,"a":"x"}'
    # Duplicate keys collapse to one: no reader can see another value than ours.
    assert canonical('{"device": "d1", "device": "d2"}', **LIMITS) == '{"device":"d2"}'


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"a": 1}, "device": "other"', "not valid JSON"),
        ('{"a": 1}}\n{"device": "other", "record": {}}', "not valid JSON"),
        ("[1, 2]", "must be a JSON object, not an array"),
        ('"text"', "must be a JSON object, not str"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": "\\ud800"}', "lone surrogate"),
        ('{"a": "' + "x" * 2000 + '"}', "over 1024 bytes"),
        ('{"a":' * 20 + "1" + "}" * 20, "nests deeper than 8"),
        ("[" * 100_000 + "]" * 100_000, "over 1024 bytes"),
    ],
)
def test_bad_records_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(RecordError, match=why.replace("(", r"\(")):
        check(record(text), **LIMITS)


@pytest.mark.parametrize(
    ("levels", "leaf", "stored"),
    [
        (7, "1", True),  # 7 objects and the scalar in the innermost: 8 levels
        (8, "1", False),  # the scalar is the 9th level
        (8, "{}", False),  # so is an empty object
        (7, "[]", True),
        (1, "[[[[[[[1]]]]]]]", False),  # lists count as objects do
        (1, "[[[[[[1]]]]]]", True),
    ],
)
def test_depth_counts_every_level_down_to_the_innermost_value(
    levels: int, leaf: str, stored: bool
) -> None:
    text = '{"a":' * levels + leaf + "}" * levels
    if stored:
        assert canonical(text, **LIMITS) == text
    else:
        with pytest.raises(RecordError, match="nests deeper than 8"):
            canonical(text, **LIMITS)


def test_deep_nesting_within_the_size_limit_is_refused_not_a_crash() -> None:
    with pytest.raises(RecordError, match="nests deeper"):
        canonical("[" * 5000 + "]" * 5000, max_bytes=100_000, max_depth=64)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"stream": "a/b"}, "stream name"),
        ({"stream": "x" * 64}, "stream name"),
        ({"seq": 0}, "seq 0 is out of range"),
        ({"time": float("nan")}, "not a time"),
        ({"time": 1e300}, "not a time"),
        ({"id": "x" * 129}, "1 to 128 characters"),
        ({"id": "a\x00b"}, "NUL"),
    ],
)
def test_bad_fields_are_refused(fields: dict[str, object], why: str) -> None:
    with pytest.raises(RecordError, match=why):
        check(record('{"a": 1}', **fields), **LIMITS)


@dataclass
class Row:
    device_id: str
    stream: str
    seq: int
    time: datetime
    record_id: str | None
    payload: str


def test_output_is_re_encoded_from_the_parsed_value() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    # A row stored before ingest checked records: spliced text must not pass.
    forged = Row("d1", "s", 1, when, None, '{"a":1}, "device": "d2"')
    assert line(forged) is None and decode(forged.payload) is None
    nasty = Row("d1", "s", 2, when, "r", '{"device":"d2","x":"a\\n{\\"device\\":\\"d2\\"}"}')
    out = line(nasty)
    assert out is not None and b"\n" not in out
    parsed = json.loads(out)
    assert parsed["device"] == "d1" and parsed["seq"] == 2
    assert parsed["record"] == {"device": "d2", "x": 'a\n{"device":"d2"}'}


def test_the_size_counted_is_the_stored_texts_utf8_bytes() -> None:
    """The byte counts skip encoding only where the answer is plain: short or
    ASCII text; text whose code points are under the limit but whose UTF-8
    bytes are over it is still refused."""
    for text in ['{"a": 1}', '{"a": "\\u00e9"}', '{"a": "' + "é" * 300 + '"}']:
        out, size = sized(text, **LIMITS)
        assert out == canonical(text, **LIMITS) and size == len(out.encode("utf-8"))
    assert check_sized(record('{"a": "é€"}'), **LIMITS) == ('{"a":"é€"}', 13)
    with pytest.raises(RecordError, match="over 1024 bytes"):
        sized('{"a": "' + "é" * 600 + '"}', **LIMITS)  # 608 code points, 1208 bytes


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ('{"a": 1}', '{"a":1}'),
        (' \n{"a": 1}\r\n\t', '{"a":1}'),  # JSON whitespace around the object
        ('{"a": 1}  ', '{"a":1}'),
        ('{"a": 1}x', None),
        ('{"a": 1}{}', None),
        ("", None),
        ('\x0c{"a": 1}', None),  # not JSON whitespace
    ],
)
def test_text_around_the_object_is_whitespace_or_refused(text: str, stored: str | None) -> None:
    if stored is not None:
        assert canonical(text, **LIMITS) == stored
    else:
        with pytest.raises(RecordError, match="not valid JSON"):
            canonical(text, **LIMITS)
