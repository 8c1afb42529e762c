"""Compact binary forms of the protocol's large parts, parsed strictly.

Share records (inside :class:`~.messages.ShareBundle` and
:class:`~.messages.ShareInbox`), fixed size, concatenated::

    | peer index: u32 BE | nonce: 12 | AES-GCM(s-share 33 || b-share 33) + tag 16 |

In a bundle the index names the recipient, in an inbox the sender (indices are
positions in the invitation's order). A binary message frame, for transports
that carry bytes (the in-process relay, and any binary channel)::

    | magic "EF\\x01" | type code: u8 | header length: u32 BE | header: JSON |
    | body length: u32 BE | body: raw bytes |

The header is the message's JSON with its one large field (``vector`` or
``shares``) left empty; the body is that field's bytes. So a 10,000-element
masked vector costs its 80,000 ring bytes plus ~100 bytes, not 4/3 of it in
base64. Parsing checks the magic, the type code, both lengths against the
frame's size and the caller's ``limit``, and leaves no trailing byte; the header
then goes through the same strict pydantic models as JSON. Nothing is
unpickled or evaluated.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from pydantic import ValidationError

from edgefleet.fed.messages import (
    MAX_PARTIES,
    NONCE_BYTES,
    SHARE_RECORD,
    FedMessage,
    decode,
)

MAGIC = b"EF\x01"
DEFAULT_LIMIT = 256 * 1024 * 1024  # a 10M-element vector of a 128-bit ring is 160 MB
MAX_HEADER = 4 * 1024 * 1024
_U32 = struct.Struct(">I")
_TYPES = (
    "fed.invite",
    "fed.advertise",
    "fed.roster",
    "fed.shares",
    "fed.inbox",
    "fed.masked",
    "fed.survivors",
    "fed.consistency",
    "fed.unmask_request",
    "fed.unmask_response",
    "fed.abort",
)
_BODY = {"fed.masked": "vector", "fed.shares": "shares", "fed.inbox": "shares"}
_BODY_LIMIT = {"fed.shares": MAX_PARTIES * SHARE_RECORD, "fed.inbox": MAX_PARTIES * SHARE_RECORD}


class FrameError(ValueError):
    """A binary frame or share record is malformed or too large (never partly used)."""


# --- share records ------------------------------------------------------------------


def pack_shares(records: Iterable[tuple[int, bytes, bytes]]) -> bytes:
    """(peer index, nonce, ciphertext) records as one byte string."""
    out = bytearray()
    for index, nonce, ciphertext in records:
        record = _U32.pack(index) + nonce + ciphertext
        if len(record) != SHARE_RECORD:
            raise FrameError(f"a share record is {SHARE_RECORD} bytes, got {len(record)}")
        out += record
    return bytes(out)


def unpack_shares(data: bytes, peers: int) -> list[tuple[int, bytes, bytes]]:
    """The records of a bundle or inbox; every index must be < ``peers``."""
    if len(data) % SHARE_RECORD:
        raise FrameError(f"share records are {SHARE_RECORD} bytes each; got {len(data)} bytes")
    view = memoryview(data)
    out = []
    for start in range(0, len(data), SHARE_RECORD):
        (index,) = _U32.unpack_from(view, start)
        if index >= peers:
            raise FrameError(f"a share record names party #{index}; there are {peers}")
        nonce = bytes(view[start + 4 : start + 4 + NONCE_BYTES])
        ciphertext = bytes(view[start + 4 + NONCE_BYTES : start + SHARE_RECORD])
        out.append((index, nonce, ciphertext))
    return out


_INDEX_ONLY = struct.Struct(f">I{SHARE_RECORD - 4}x")  # a record's peer index, rest skipped


def record_indices(data: bytes, peers: int) -> list[int]:
    """The peer index of every record, with :func:`unpack_shares`' checks, without
    copying nonces and ciphertexts (the server routes records, it never opens them)."""
    if len(data) % SHARE_RECORD:
        raise FrameError(f"share records are {SHARE_RECORD} bytes each; got {len(data)} bytes")
    indices = [index for (index,) in _INDEX_ONLY.iter_unpack(data)]
    if indices and max(indices) >= peers:
        raise FrameError(f"a share record names party #{max(indices)}; there are {peers}")
    return indices


def readdress(data: bytes, index: int) -> bytes:
    """One record with its peer index replaced (the server: recipient -> sender)."""
    return _U32.pack(index) + data[4:]


# --- binary message frames ----------------------------------------------------------


def has_body(message: FedMessage) -> bool:
    """Whether the message has a large part that a binary frame carries raw."""
    return message.type in _BODY


def encode_frame(message: FedMessage) -> bytes:
    field = _BODY.get(message.type)
    body = b""
    if field is not None:
        body = getattr(message, field)
        message = message.model_copy(update={field: b""})
    header = message.model_dump_json().encode()
    code = _TYPES.index(message.type)
    return b"".join(
        (MAGIC, bytes((code,)), _U32.pack(len(header)), header, _U32.pack(len(body)), body)
    )


def decode_frame(data: bytes, limit: int = DEFAULT_LIMIT) -> FedMessage:
    """One message from a binary frame; :class:`FrameError` on anything malformed."""
    if len(data) > limit:
        raise FrameError(f"a frame of {len(data)} bytes is over the limit of {limit}")
    if len(data) < len(MAGIC) + 9 or not data.startswith(MAGIC):
        raise FrameError("not a federated message frame")
    code = data[3]
    if code >= len(_TYPES):
        raise FrameError(f"unknown message type code {code}")
    (header_length,) = _U32.unpack_from(data, 4)
    if header_length > MAX_HEADER or 8 + header_length + 4 > len(data):
        raise FrameError("the header length does not fit the frame")
    header = data[8 : 8 + header_length]
    (body_length,) = _U32.unpack_from(data, 8 + header_length)
    start = 12 + header_length
    if start + body_length != len(data):
        raise FrameError("the body length does not match the frame")
    body = data[start:]
    try:
        message = decode(header)
    except ValidationError as exc:
        raise FrameError(f"invalid header: {exc.error_count()} error(s)") from exc
    if message.type != _TYPES[code]:
        raise FrameError("the type code does not match the header")
    field = _BODY.get(message.type)
    if field is None:
        if body:
            raise FrameError(f"{message.type} carries no body")
        return message
    if getattr(message, field):
        raise FrameError(f"{message.type} carries its {field} in the body, not the header")
    if len(body) > _BODY_LIMIT.get(message.type, limit):
        raise FrameError(f"the {field} of {message.type} is over its size limit")
    # the header passed the model's validation; the body is raw bytes whose only
    # constraint (its size) was checked above: no second validation of the whole
    return message.model_copy(update={field: bytes(body)})
