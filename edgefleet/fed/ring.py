"""Vectors in the ring Z_{2^k} as numpy arrays of 64-bit limbs.

Fixed point: a float x becomes round(x * 2**f) mod 2**k (k = ``ring_bits``,
f = ``frac_bits``) and a sum s decodes as the signed value of s over 2**f. The
product ``x * 2**f`` is exact in binary floating point, so encoding adds only
the rounding error (at most 2**-(f+1) per element). Overflow is impossible, not
merely detected: :class:`~edgefleet.fed.messages.Params` bounds |x|, a party
refuses a larger input, and :class:`~edgefleet.fed.messages.Invitation` refuses
more parties than ``Params.max_parties()``, so |sum| < 2**(k-1).

Layout: a vector is a C-ordered ``uint64`` array of shape (length, k / 64);
element i is ``sum(v[i, j] << 64 j)``. So ``v.tobytes()`` *is* the wire format
(k/8 little-endian bytes per element, no padding), a mask is an AES-CTR
keystream read in place (:func:`numpy.frombuffer`), and adding or subtracting
two vectors is a handful of whole-array operations: numpy's uint64 arithmetic
wraps mod 2**64, and the carry into the next limb is ``sum < addend``. With the
usual one limb (k = 64) it is a single ``+``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from edgefleet.fed import crypto
from edgefleet.fed.messages import Params

Vector = npt.NDArray[np.uint64]


class Ring:
    def __init__(self, params: Params) -> None:
        self.bits = params.ring_bits
        self.frac_bits = params.frac_bits
        self.bound = params.bound
        self.length = params.length
        self.limbs = self.bits // 64
        self.width = self.bits // 8  # bytes per element on the wire
        self.modulus = 1 << self.bits
        # |x| * 2**f fits an int64: encode in numpy, else element by element
        self._fast = self.bound * 2.0**self.frac_bits < 2.0**62

    def zero(self) -> Vector:
        return np.zeros((self.length, self.limbs), dtype=np.uint64)

    # --- arithmetic ---------------------------------------------------------------

    def add(self, a: Vector, b: Vector) -> Vector:
        if self.limbs == 1:
            return a + b
        out = a + b
        carry = (out[:, 0] < a[:, 0]).astype(np.uint64)
        for j in range(1, self.limbs):
            column = out[:, j] + carry
            carry = ((out[:, j] < a[:, j]) | (column < carry)).astype(np.uint64)
            out[:, j] = column
        return out

    def sub(self, a: Vector, b: Vector) -> Vector:
        if self.limbs == 1:
            return a - b
        out = a - b
        borrow = (a[:, 0] < b[:, 0]).astype(np.uint64)
        for j in range(1, self.limbs):
            column = out[:, j] - borrow
            borrow = ((a[:, j] < b[:, j]) | (out[:, j] < borrow)).astype(np.uint64)
            out[:, j] = column
        return out

    def add_into(self, acc: Vector, b: Vector) -> None:
        """acc += b in place (no temporary for the usual one limb)."""
        if self.limbs == 1:
            np.add(acc, b, out=acc)
        else:
            acc[...] = self.add(acc, b)

    def sub_into(self, acc: Vector, b: Vector) -> None:
        """acc -= b in place."""
        if self.limbs == 1:
            np.subtract(acc, b, out=acc)
        else:
            acc[...] = self.sub(acc, b)

    def mask(self, seed: bytes, label: str, *context: str) -> Vector:
        """A uniformly random vector: the AES-CTR keystream keyed by ``seed``, read
        as little-endian 64-bit limbs (every bit of every element is random)."""
        stream = crypto.keystream(seed, self.length * self.width, label, *context)
        return np.frombuffer(stream, dtype="<u8").reshape(self.length, self.limbs).copy()

    def masker(self) -> Masker:
        """A mask generator with its own scratch buffer, for many masks in a row."""
        return Masker(self)

    # --- fixed point ------------------------------------------------------------

    def encode(self, values: Sequence[float] | npt.NDArray[np.float64]) -> Vector:
        """Fixed-point encoding; refuses non-finite or out-of-bound values (without
        naming the value: the error may end up in a log or an abort reason)."""
        if len(values) != self.length:
            raise ValueError(f"expected {self.length} values, got {len(values)}")
        array = np.asarray(values, dtype=np.float64)
        # one pass: a NaN makes the maximum NaN and an infinity exceeds the (finite)
        # bound, so "max |x| <= bound" fails for every non-finite input too
        if not np.abs(array).max() <= self.bound:
            raise ValueError(f"a value is not finite or outside the bound ±{self.bound!r}")
        if self._fast:
            scaled = np.rint(array * 2.0**self.frac_bits).astype(np.int64)
            out = np.empty((self.length, self.limbs), dtype=np.uint64)
            out[:, 0] = scaled.view(np.uint64)
            if self.limbs > 1:  # sign-extend into the upper limbs
                out[:, 1:] = np.where(scaled < 0, np.uint64(2**64 - 1), np.uint64(0))[:, None]
            return out
        scale = float(1 << self.frac_bits)
        raw = b"".join(
            (round(v * scale) % self.modulus).to_bytes(self.width, "little") for v in values
        )
        return self.from_wire(raw)

    def elements(self, vector: Vector) -> list[int]:
        """The ring elements (0 <= e < 2**k) as Python integers."""
        if self.limbs == 1:
            return [int(e) for e in vector[:, 0]]
        raw, w = vector.astype("<u8").tobytes(), self.width
        return [int.from_bytes(raw[i * w : (i + 1) * w], "little") for i in range(self.length)]

    def decode_floats(self, vector: Vector) -> list[float]:
        """The same values as :meth:`decode`, as floats, without building 10,000
        Fractions: int64 -> float64 rounds to nearest and dividing by 2**f is exact,
        as is float(Fraction) (pinned equal in the unit tests)."""
        if self.limbs == 1:
            signed = vector[:, 0].view(np.int64).astype(np.float64)
            return (signed / float(1 << self.frac_bits)).tolist()  # type: ignore[no-any-return]
        return [float(value) for value in self.decode(vector)]

    def decode(self, vector: Vector) -> list[Fraction]:
        """Signed fixed-point values, exactly."""
        half, denominator = self.modulus >> 1, 1 << self.frac_bits
        return [
            Fraction(e - self.modulus if e >= half else e, denominator)
            for e in self.elements(vector)
        ]

    # --- wire format: k/8 little-endian bytes per element ---------------------------

    def to_wire(self, vector: Vector) -> bytes:
        return vector.astype("<u8", copy=False).tobytes()

    def from_wire(self, data: bytes) -> Vector:
        if len(data) != self.length * self.width:
            raise ValueError(f"expected {self.length * self.width} bytes, got {len(data)}")
        array = np.frombuffer(data, dtype="<u8").reshape(self.length, self.limbs)
        return array.astype(np.uint64)  # a native, writable copy


# --- the two kinds of mask, shared by Party (adds them) and Aggregator (removes them)


def self_mask(ring: Ring, seed: bytes, computation_id: str, party: str) -> Vector:
    """PRG(b_u): the mask only the party's own seed (or t shares of it) removes."""
    return ring.mask(seed, "self-mask", computation_id, party)


def pairwise_mask(ring: Ring, shared: bytes, computation_id: str, a: str, b: str) -> Vector:
    """PRG(s_ab) with s_ab = HKDF(ECDH(s_a, s_b)); symmetric in a and b."""
    return ring.mask(shared, "pairwise-mask", computation_id, *crypto.pair(a, b))


def add_pairwise(ring: Ring, vector: Vector, mask: Vector, me: str, peer: str) -> Vector:
    """What ``me`` does with the mask shared with ``peer``: + for a later peer,
    - for an earlier one, so the pair cancels in any sum holding both."""
    return ring.add(vector, mask) if peer > me else ring.sub(vector, mask)


class Masker:
    """Adds or removes masks in place: each AES-CTR keystream is written into one
    reused buffer (``update_into``) and added to the accumulator with one numpy
    call, so a party's 35 masks cost 35 keystreams and 35 additions, no allocation."""

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        size = ring.length * ring.width
        self._zeros = bytes(size)
        self._buffer = bytearray(size + 15)  # update_into wants a block's slack
        self._view: Vector = np.frombuffer(self._buffer, dtype="<u8", count=size // 8).reshape(
            ring.length, ring.limbs
        )

    def apply(self, acc: Vector, seed: bytes, sign: int, info: bytes) -> None:
        """acc += PRG(seed) (``sign`` = 1) or acc -= PRG(seed) (``sign`` = -1), the
        keystream for the pre-framed ``info`` (:func:`crypto.keystream_into`)."""
        crypto.keystream_into(seed, self._zeros, self._buffer, info)
        if sign > 0:
            self.ring.add_into(acc, self._view)
        else:
            self.ring.sub_into(acc, self._view)

    def self_mask(
        self, acc: Vector, seed: bytes, computation_id: str, party: str, sign: int
    ) -> None:
        """acc +- PRG(b_u), the same mask as :func:`self_mask`."""
        self.apply(acc, seed, sign, _SELF_MASK + crypto.frame(computation_id, party))

    def pairwise(
        self, acc: Vector, shared: bytes, computation_id: str, me: str, peer: str, sign: int
    ) -> None:
        """What :func:`add_pairwise` (``sign`` = 1) or :func:`remove_pairwise`
        (``sign`` = -1) do with the mask of ``me`` and ``peer``, in place."""
        direction = sign if peer > me else -sign
        self.pairwise_in(acc, shared, crypto.pair_context(computation_id, me, peer), direction)

    def pairwise_in(self, acc: Vector, shared: bytes, context: bytes, direction: int) -> None:
        """:meth:`pairwise` for a caller that holds the pair's framed ``context``
        (:func:`crypto.pair_context`) and has chosen the direction: +1 adds the mask
        (``me`` < ``peer`` when masking), -1 subtracts it."""
        self.apply(acc, shared, direction, _PAIRWISE_MASK + context)


_SELF_MASK = crypto.labelled("self-mask")
_PAIRWISE_MASK = crypto.labelled("pairwise-mask")


def remove_pairwise(ring: Ring, vector: Vector, mask: Vector, me: str, peer: str) -> Vector:
    """Undo :func:`add_pairwise` (the server, for a survivor ``me`` and a dropped ``peer``)."""
    return ring.sub(vector, mask) if peer > me else ring.add(vector, mask)


MaskJob = Callable[[Masker, Vector], None]  # adds or removes one mask into the given vector


def apply_all(ring: Ring, acc: Vector, jobs: Sequence[MaskJob], threads: int = 1) -> float:
    """Run every job into ``acc``. With ``threads`` > 1 the jobs are dealt round-robin
    to that many threads, each with its own :class:`Masker` and accumulator, and the
    partial sums are added at the end (addition in Z_{2^k} is order-free, so the
    result is the same). Worth it because the heavy parts run without the GIL:
    X25519 in libsodium, the AES-CTR keystream in ``cryptography``'s Rust core and
    numpy's additions; a second core then really works (the server's unmasking).
    Returns the CPU seconds the worker threads spent (0 when run on the caller's
    thread), so that a benchmark timing the caller's thread hides none of it."""
    if threads <= 1 or len(jobs) < 2 * threads:
        masker = ring.masker()
        for job in jobs:
            job(masker, acc)
        return 0.0

    def work(chunk: Sequence[MaskJob]) -> tuple[Vector, float]:
        cpu = time.thread_time()
        masker, partial = ring.masker(), ring.zero()
        for job in chunk:
            job(masker, partial)
        return partial, time.thread_time() - cpu

    with ThreadPoolExecutor(threads, thread_name_prefix="fed-unmask") as pool:
        done = list(pool.map(work, [jobs[i::threads] for i in range(threads)]))
    for partial, _ in done:
        ring.add_into(acc, partial)
    return sum(cpu for _, cpu in done)
