"""The protocol's cryptographic building blocks, each a thin call into a
maintained library: X25519 from libsodium (PyNaCl), AES-256-GCM and AES-256-CTR
from ``cryptography``, SHA-256 from the standard library. HMAC-SHA256 (RFC 2104)
and HKDF-SHA256 (RFC 5869: for one 32-byte block, two HMACs) are those
constructions written out over ``hashlib`` (the pads XORed in by ``translate``),
because OpenSSL 3's one-shot HMAC costs twice as much per call; unit tests pin
them equal to the stdlib's ``hmac`` and ``cryptography``'s HKDF, and pin the
derived keys, MACs and masks to known bytes (devices of every version must
agree on them). Shamir sharing, plain modular arithmetic over a prime field, is
in :mod:`.shamir`.

Private keys are raw 32-byte scalars: libsodium takes them as they are, where a
``cryptography`` key object costs as much to load as an exchange.

Every derived key is domain-separated by a label and the computation id, and
every byte string fed to a KDF, MAC or AEAD is length-prefixed (:func:`frame`),
so no two different contexts encode to the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base
from nacl.exceptions import RuntimeError as NaclRuntimeError
from nacl.exceptions import TypeError as NaclTypeError

from edgefleet.fed.errors import TamperedMessage

DOMAIN = "edgefleet/fed/v2"


def frame(*fields: str | bytes) -> bytes:
    """Unambiguous concatenation: each field as 4-byte big-endian length + bytes.
    Frames concatenate (``frame(a, b) == frame(a) + frame(b)``), so a caller that
    derives many keys in one context frames the constant part once."""
    out = []  # a plain loop: a generator here cost a party ~5 % of its work
    for field in fields:
        if isinstance(field, str):
            out.append(_framed(field))
        else:
            out.append(len(field).to_bytes(4, "big"))
            out.append(field)
    return b"".join(out)


@lru_cache(maxsize=1 << 12)
def _framed(text: str) -> bytes:
    """A text field framed once: labels, computation ids and party names recur in
    every key derivation and MAC (a party frames ~300 of them per computation).
    Bounded: an agent that computes for months keeps at most a few hundred KB."""
    raw = text.encode()
    return len(raw).to_bytes(4, "big") + raw


def framed(text: str) -> bytes:
    """``frame(text)`` for one text field, from the bounded cache."""
    return _framed(text)


def labelled(label: str) -> bytes:
    """``frame(DOMAIN, label)``: what opens every KDF info and MAC message."""
    return _framed(DOMAIN) + _framed(label)


# --- X25519 ---------------------------------------------------------------------
# libsodium through PyNaCl: raw 32-byte keys (no key objects to load per exchange)
# and the exchange runs without the GIL, so a process's threads share both cores.
# Keys are interchangeable with ``cryptography``'s (RFC 7748 clamps the scalar on
# use; pinned equal in the unit tests), which enrollment uses to make them.

PrivateKey = bytes  # a raw X25519 scalar, as enrollment stores it


def generate() -> bytes:
    """A fresh private key: 32 bytes from the OS's CSPRNG (clamped on use)."""
    return os.urandom(32)


def new_private_key() -> bytes:
    return generate()


def load(private: bytes | X25519PrivateKey) -> bytes:
    """The raw scalar (a ``cryptography`` key object is accepted and unwrapped)."""
    if isinstance(private, bytes):
        if len(private) != 32:
            raise ValueError("an X25519 private key is 32 bytes")
        return private
    return private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def raw(private: bytes) -> bytes:
    return private


def public_key(private: bytes | X25519PrivateKey) -> bytes:
    return bytes(crypto_scalarmult_base(load(private)))


def agree(private: bytes, peer_public: bytes) -> bytes:
    """Raw X25519 shared secret; a low-order peer key (all-zero secret, which
    libsodium refuses) counts as tampering, and so does a key that is not 32 bytes:
    PyNaCl's ``crypto_scalarmult`` checks no length and libsodium reads 32 bytes
    from each pointer (the messages' models size every key, this keeps any other
    caller from an out-of-bounds read)."""
    if not (
        isinstance(private, bytes)
        and isinstance(peer_public, bytes)
        and len(private) == len(peer_public) == 32
    ):
        raise TamperedMessage("unusable X25519 key: X25519 keys are 32 bytes")
    try:
        return bytes(crypto_scalarmult(private, peer_public))
    except (NaclRuntimeError, NaclTypeError) as exc:
        raise TamperedMessage(f"unusable X25519 public key: {exc}") from exc


def agree_reference(private: bytes, peer_public: bytes) -> bytes:
    """:func:`agree` through ``cryptography`` (for the test that pins them equal)."""
    key = X25519PrivateKey.from_private_bytes(private)
    return key.exchange(X25519PublicKey.from_public_bytes(peer_public))


# --- HMAC-SHA256 and HKDF-SHA256 ---------------------------------------------------
# RFC 2104 written out over hashlib's SHA-256 for keys of at most one block:
# OpenSSL 3's one-shot HMAC (``hmac.digest``) fetches its algorithm on every call
# and costs twice as much, and a party computes ~300 HMACs per computation. The
# unit tests pin both equal to the stdlib's HMAC and ``cryptography``'s HKDF.

_BLOCK = 64  # SHA-256's block: shorter keys are zero-padded to it
_INNER = bytes(x ^ 0x36 for x in range(256))  # key XOR ipad, as a translate table
_OUTER = bytes(x ^ 0x5C for x in range(256))  # key XOR opad
_sha256 = hashlib.sha256
# extract: HMAC keyed by the absent salt (RFC 5869: HashLen zero bytes), padded once
_EXTRACT_INNER = _sha256(bytes(_BLOCK).translate(_INNER))
_EXTRACT_OUTER = _sha256(bytes(_BLOCK).translate(_OUTER))
# the padded block of a 32-byte key ends in 32 zero bytes XORed with the pads
_INNER_TAIL, _OUTER_TAIL = bytes(32).translate(_INNER), bytes(32).translate(_OUTER)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256(key, message), the same bytes as ``hmac.digest``."""
    if len(key) > _BLOCK:
        return hmac.digest(key, message, "sha256")
    block = key.ljust(_BLOCK, b"\0")
    inner = _sha256(block.translate(_INNER) + message).digest()
    return _sha256(block.translate(_OUTER) + inner).digest()


class MacKey:
    """HMAC-SHA256 under one key, its two padded blocks hashed once. A party MACs
    and checks up to four messages per neighbour key (round-0 tag and check,
    round-3 tag and check, ~150 per computation at 1,000 parties): each then
    costs two hash copies and two one-block finishes, no padding or rehashing.
    Pinned equal to :func:`hmac_sha256` in the unit tests."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = _sha256(key).digest()  # RFC 2104: a long key is hashed first
        block = key.ljust(_BLOCK, b"\0")
        self._inner = _sha256(block.translate(_INNER))
        self._outer = _sha256(block.translate(_OUTER))

    def tag(self, message: bytes) -> bytes:
        """HMAC(key, message); ``message`` is already framed (see :func:`mac`)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def verify(self, tag: bytes, message: bytes) -> bool:
        return hmac.compare_digest(self.tag(message), tag)


def derive(secret: bytes, info: bytes) -> bytes:
    """32 bytes of HKDF-SHA256(secret, no salt, ``info``): for one 32-byte block,
    RFC 5869's extract and expand are exactly two HMACs. The expand HMAC is keyed by
    the 32-byte PRK: its padded blocks are the PRK's 32 bytes XORed (``translate``)
    followed by 32 constant pad bytes, fed to the hash piecewise instead of
    concatenated (a party derives ~115 keys per computation)."""
    inner = _EXTRACT_INNER.copy()
    inner.update(secret)
    outer = _EXTRACT_OUTER.copy()
    outer.update(inner.digest())
    prk = outer.digest()
    expand = _sha256(prk.translate(_INNER))
    expand.update(_INNER_TAIL)
    expand.update(info)
    expand.update(b"\x01")
    result = _sha256(prk.translate(_OUTER))
    result.update(_OUTER_TAIL)
    result.update(expand.digest())
    return result.digest()


def kdf(secret: bytes, label: str, *context: str) -> bytes:
    """32 bytes of HKDF-SHA256(secret) for one purpose in one context: the info is
    ``frame(DOMAIN, label, *context)`` (:func:`derive` takes it pre-framed)."""
    return derive(secret, labelled(label) + frame(*context))


def kdf_reference(secret: bytes, label: str, *context: str) -> bytes:
    """:func:`kdf` through ``cryptography``'s HKDF (for the test that pins them equal)."""
    info = frame(DOMAIN, label, *context)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def pair(a: str, b: str) -> tuple[str, str]:
    """The two ends of a pairwise key in canonical order (the key is symmetric)."""
    return (a, b) if a < b else (b, a)


def pair_context(computation_id: str, u: str, v: str) -> bytes:
    """``frame(computation_id, *pair(u, v))``, the context of every pairwise key and
    mask, from the cached frames of its three names (a party derives 3k of them)."""
    a, b = (u, v) if u < v else (v, u)
    return _framed(computation_id) + _framed(a) + _framed(b)


# --- authentication ---------------------------------------------------------------


def mac(key: bytes, *fields: str | bytes) -> bytes:
    return hmac_sha256(key, frame(DOMAIN, *fields))


def verify_mac(key: bytes, tag: bytes, *fields: str | bytes) -> bool:
    return hmac.compare_digest(mac(key, *fields), tag)


def commit(seed: bytes, computation_id: str, party: str) -> bytes:
    """Hiding (the seed is 32 random bytes) and binding commitment to a self-mask seed."""
    return hashlib.sha256(
        frame(DOMAIN, "self-mask-commitment", computation_id, party, seed)
    ).digest()


Sealer = AESGCM  # AES-256-GCM under one pair's share key


def sealer(key: bytes) -> Sealer:
    """The cipher of one pair's share key, keyed once: a party seals its record to
    the peer with it in round 1 and opens the peer's record in round 2 (keying
    AES-GCM is two thirds of opening a 66-byte record). As secret as the key."""
    return AESGCM(key)


def seal(
    key: bytes | Sealer, associated: bytes, plaintext: bytes, nonce: bytes | None = None
) -> tuple[bytes, bytes]:
    """AES-256-GCM; ``nonce``: 12 fresh random bytes (drawn here when not given; a
    caller sealing many records draws them in one call). Each key seals one record
    per direction of its pair, each under its own random nonce."""
    nonce = os.urandom(12) if nonce is None else nonce
    cipher = key if isinstance(key, AESGCM) else AESGCM(key)
    return nonce, cipher.encrypt(nonce, plaintext, associated)


def unseal(key: bytes | Sealer, nonce: bytes, associated: bytes, ciphertext: bytes) -> bytes:
    cipher = key if isinstance(key, AESGCM) else AESGCM(key)
    try:
        return cipher.decrypt(nonce, ciphertext, associated)
    except InvalidTag as exc:
        raise TamperedMessage("an encrypted share failed authentication") from exc


# --- the mask generator ---------------------------------------------------------


def keystream(seed: bytes, size: int, label: str, *context: str) -> bytes:
    """``size`` bytes of AES-256-CTR keyed by HKDF(seed): one C call, no per-element work."""
    key = kdf(seed, label, *context)
    encryptor = Cipher(algorithms.AES(key), _CTR).encryptor()
    return encryptor.update(bytes(size)) + encryptor.finalize()


def keystream_into(seed: bytes, zeros: bytes, out: bytearray, info: bytes) -> None:
    """The first ``len(zeros)`` bytes of :func:`keystream` for the pre-framed
    ``info`` (``labelled(label) + frame(*context)``) written into ``out`` (which must
    have 15 bytes of slack): no allocation per mask."""
    encryptor = Cipher(algorithms.AES(derive(seed, info)), _CTR).encryptor()
    encryptor.update_into(zeros, out)
    encryptor.finalize()


_CTR = modes.CTR(bytes(16))  # every key streams once, from a zero counter block
