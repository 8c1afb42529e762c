"""Vectors in the ring Z_{2^k}, packed into one Python int.

Fixed point: a float x becomes round(x * 2**f) mod 2**k (k = ``ring_bits``,
f = ``frac_bits``) and a sum s decodes as the signed value of s over 2**f. The
product ``x * 2**f`` is exact in binary floating point, so encoding adds only
the rounding error (at most 2**-(f+1) per element). Overflow is impossible, not
merely detected: :class:`~edgefleet.fed.messages.Params` bounds |x|, a party
refuses a larger input, and :class:`~edgefleet.fed.messages.Invitation` refuses
more parties than ``Params.max_parties()``, so |sum| < 2**(k-1).

Packing: element i occupies lane i of ``k + 8`` bits (one guard byte) of a
single big int::

    lane:     | guard 8 bits | element: k bits |   x length, element 0 lowest
    add:      (a + b) & LOW               carries stay in the guard byte
    subtract: (a + (K - b)) & LOW         K has 2**k in every lane

so adding a whole mask vector is one C-level big-int addition and one AND, and
turning an AES-CTR keystream into a mask vector is ``int.from_bytes(...) & LOW``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from edgefleet.fed import crypto
from edgefleet.fed.messages import Params


class Ring:
    def __init__(self, params: Params) -> None:
        self.bits = params.ring_bits
        self.frac_bits = params.frac_bits
        self.bound = params.bound
        self.length = params.length
        self.width = self.bits // 8  # bytes per element on the wire
        self.lane = self.width + 1  # bytes per element packed (one guard byte)
        self.modulus = 1 << self.bits
        self.low = int.from_bytes((b"\xff" * self.width + b"\x00") * self.length, "little")
        self.lanes_k = int.from_bytes((bytes(self.width) + b"\x01") * self.length, "little")

    # --- arithmetic ---------------------------------------------------------------

    def add(self, a: int, b: int) -> int:
        return (a + b) & self.low

    def sub(self, a: int, b: int) -> int:
        return (a + (self.lanes_k - b)) & self.low

    def mask(self, seed: bytes, label: str, *context: str) -> int:
        """A uniformly random vector from AES-CTR keyed by ``seed``: guard bytes of
        the keystream are discarded by the AND, every element keeps k random bits."""
        stream = crypto.keystream(seed, self.length * self.lane, label, *context)
        return int.from_bytes(stream, "little") & self.low

    # --- fixed point ------------------------------------------------------------

    def encode(self, values: Sequence[float]) -> int:
        """Packed fixed-point encoding; refuses non-finite or out-of-bound values
        (without naming the value: the error may end up in a log or an abort reason)."""
        if len(values) != self.length:
            raise ValueError(f"expected {self.length} values, got {len(values)}")
        scale = float(1 << self.frac_bits)
        out = bytearray()
        for value in values:
            if not math.isfinite(value) or abs(value) > self.bound:
                raise ValueError(f"a value is not finite or outside the bound ±{self.bound!r}")
            out += (round(value * scale) % self.modulus).to_bytes(self.lane, "little")
        return int.from_bytes(out, "little")

    def elements(self, packed: int) -> list[int]:
        """The ring elements (0 <= e < 2**k) of a reduced packed vector."""
        raw = packed.to_bytes(self.length * self.lane, "little")
        w, lane = self.width, self.lane
        return [int.from_bytes(raw[i * lane : i * lane + w], "little") for i in range(self.length)]

    def decode(self, packed: int) -> list[Fraction]:
        """Signed fixed-point values of a reduced packed vector, exactly."""
        half, denominator = self.modulus >> 1, 1 << self.frac_bits
        return [
            Fraction(e - self.modulus if e >= half else e, denominator)
            for e in self.elements(packed)
        ]

    # --- wire format: k/8 little-endian bytes per element, no guard bytes ---------

    def to_wire(self, packed: int) -> bytes:
        raw = packed.to_bytes(self.length * self.lane, "little")
        out = bytearray(self.length * self.width)
        for j in range(self.width):  # strided copies: width C-level operations
            out[j :: self.width] = raw[j :: self.lane]
        return bytes(out)

    def from_wire(self, data: bytes) -> int:
        if len(data) != self.length * self.width:
            raise ValueError(f"expected {self.length * self.width} bytes, got {len(data)}")
        buf = bytearray(self.length * self.lane)
        for j in range(self.width):
            buf[j :: self.lane] = data[j :: self.width]
        return int.from_bytes(buf, "little")


# --- the two kinds of mask, shared by Party (adds them) and Aggregator (removes them)


def self_mask(ring: Ring, seed: bytes, computation_id: str, party: str) -> int:
    """PRG(b_u): the mask only the party's own seed (or t shares of it) removes."""
    return ring.mask(seed, "self-mask", computation_id, party)


def pairwise_mask(ring: Ring, shared: bytes, computation_id: str, a: str, b: str) -> int:
    """PRG(s_ab) with s_ab = HKDF(ECDH(s_a, s_b)); symmetric in a and b."""
    return ring.mask(shared, "pairwise-mask", computation_id, *crypto.pair(a, b))


def add_pairwise(ring: Ring, vector: int, mask: int, me: str, peer: str) -> int:
    """What ``me`` does with the mask shared with ``peer``: + for a later peer,
    - for an earlier one, so the pair cancels in any sum holding both."""
    return ring.add(vector, mask) if peer > me else ring.sub(vector, mask)


def remove_pairwise(ring: Ring, vector: int, mask: int, me: str, peer: str) -> int:
    """Undo :func:`add_pairwise` (the server, for a survivor ``me`` and a dropped ``peer``)."""
    return ring.sub(vector, mask) if peer > me else ring.add(vector, mask)
