"""The MACs a party sends are the documented ones, byte for byte: a device of
another version computes and checks them from :func:`crypto.mac`'s fields, so a
party that frames them faster must still produce exactly these bytes."""

from __future__ import annotations

import hashlib
import os

import pytest

from edgefleet.fed import crypto, shamir
from edgefleet.fed.codec import decode_frame, unpack_shares
from edgefleet.fed.messages import AdvertiseKeys, ConsistencyTags, Params, ShareBundle, Survivors
from edgefleet.fed.party import lists_digest
from edgefleet.fed.simulate import identities, invite, run


@pytest.mark.parametrize("key_length", [0, 16, 32, 64, 65, 100])
def test_a_mac_key_is_hmac_sha256(key_length: int) -> None:
    for _ in range(5):
        key, message = os.urandom(key_length), os.urandom(97)
        mac_key = crypto.MacKey(key)
        tag = mac_key.tag(message)
        assert tag == crypto.hmac_sha256(key, message)
        assert mac_key.tag(message) == tag  # the precomputed pads are not consumed
        assert mac_key.verify(tag, message)
        assert not mac_key.verify(tag, message + b"!")


def test_round_0_and_round_3_tags_are_the_documented_macs() -> None:
    names = [f"p{i:02d}" for i in range(25)]  # 25 > graph.FULL_UP_TO: neighbourhoods
    keys = identities(names)
    invitation = invite("c-tags", keys, 13, Params(length=3, ring_bits=64, frac_bits=8, bound=10))
    outcome = run(invitation, keys, {n: [1.0, 2.0, 3.0] for n in names})
    assert outcome.result == [25.0, 50.0, 75.0]
    messages = [decode_frame(frame) for frame in outcome.transcript]
    survivors = next(m for m in messages if isinstance(m, Survivors))
    lists = lists_digest("c-tags", survivors.survivors, survivors.dropped)
    neighbours = invitation.neighbourhoods()

    def auth(u: str, v: str) -> bytes:
        shared = crypto.agree(keys[u], invitation.parties[v])
        return crypto.kdf(shared, "advertise-mac", "c-tags", *crypto.pair(u, v))

    adverts = [m for m in messages if isinstance(m, AdvertiseKeys)]
    consistency = [m for m in messages if isinstance(m, ConsistencyTags)]
    assert len(adverts) == len(consistency) == 25
    for m in adverts:
        u = m.sender
        assert set(m.tags) == neighbours[u]
        for v, tag in m.tags.items():
            fields = ("advertise", "c-tags", u, v, m.s_public, m.c_public, invitation.digest())
            assert tag == crypto.mac(auth(u, v), *fields)
    for c in consistency:
        u = c.sender
        assert set(c.tags) == neighbours[u]
        for v, tag in c.tags.items():
            assert tag == crypto.mac(auth(u, v), "consistency", "c-tags", u, v, lists)


def test_share_records_are_sealed_under_the_documented_key_and_data() -> None:
    """Each round-1 record is AES-GCM under kdf(ECDH(c_u, c_v), "share-encryption",
    cid, *pair(u, v)) with associated data frame(cid, u, v): what a device of
    another version derives to open it (the party frames these piecewise)."""
    names = [f"p{i:02d}" for i in range(25)]
    keys = identities(names)
    invitation = invite("c-seal", keys, 13, Params(length=3, ring_bits=64, frac_bits=8, bound=10))
    outcome = run(invitation, keys, {n: [1.0, 2.0, 3.0] for n in names})
    assert outcome.result == [25.0, 50.0, 75.0]
    messages = [decode_frame(frame) for frame in outcome.transcript]
    c_public = {m.sender: m.c_public for m in messages if isinstance(m, AdvertiseKeys)}
    bundles = [m for m in messages if isinstance(m, ShareBundle)]
    assert len(bundles) == 25
    order = invitation.order()
    opened = 0
    for bundle in bundles:
        u = bundle.sender
        c_private = outcome.parties[u]._c_private
        for index, nonce, ciphertext in unpack_shares(bundle.shares, len(order)):
            v = order[index]
            shared = crypto.agree(c_private, c_public[v])
            key = crypto.kdf(shared, "share-encryption", "c-seal", *crypto.pair(u, v))
            plaintext = crypto.unseal(key, nonce, crypto.frame("c-seal", u, v), ciphertext)
            assert len(plaintext) == 2 * shamir.SHARE_BYTES
            opened += 1
    assert opened == sum(len(n) for n in invitation.neighbourhoods().values())


def test_the_lists_digest_is_the_documented_hash_and_stays_out_of_the_frame_cache() -> None:
    """sha256(frame("u3", cid, sorted U3 NUL-joined, NUL NUL, sorted dropped NUL-joined)),
    the same bytes for every version; the O(n) text is framed as bytes, so the
    bounded cache of framed names never holds (or hashes) a 900-name list."""
    listed = b"a\0b\0c\0\0d\0e"
    framed = b"".join(len(f).to_bytes(4, "big") + f for f in (b"u3", b"c-lists", listed))
    assert lists_digest("c-lists", ["b", "c", "a"], ["e", "d"]) == hashlib.sha256(framed).digest()
    crypto._framed.cache_clear()
    lists_digest("c-lists", [f"device-{i:05d}" for i in range(900)], ["device-99999"])
    assert crypto._framed.cache_info().currsize == 2  # "u3" and the computation id only
