"""An in-process relay: one computation with every party in this process, for
tests and benchmarks. Each message is encoded to a binary frame
(:func:`~edgefleet.fed.codec.encode_frame`) and parsed back, so what the
parties and the aggregator see is what a binary transport would deliver, and
``sent_bytes`` counts those frames.

::

    Party.advertise ----> Aggregator.on_advertise    .rosters()          ----> Party.share_keys
    Party.share_keys ---> Aggregator.on_shares       .inboxes()          ----> Party.masked_input
    Party.masked_input -> Aggregator.on_masked       .survivor_list()    ----> Party.consistency
    Party.consistency --> Aggregator.on_consistency  .unmask_requests()  ----> Party.unmask
    Party.unmask -------> Aggregator.on_unmask       .result()

``tamper`` sees every message on its way to a party (``to`` names the party):
the hook through which tests play an active, lying server. Importing this
module has no side effects; :func:`benchmark` runs only when called.
"""

from __future__ import annotations

import functools
import gc
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np

from edgefleet.fed import codec, crypto
from edgefleet.fed.aggregator import Aggregator
from edgefleet.fed.errors import ProtocolAborted
from edgefleet.fed.messages import (
    FedMessage,
    Invitation,
    Params,
    Survivors,
)
from edgefleet.fed.party import Party

Round = Literal["advertise", "shares", "masked", "consistency", "unmask"]
ROUNDS: list[Round] = ["advertise", "shares", "masked", "consistency", "unmask"]
Tamper = Callable[[str, FedMessage], FedMessage]
M = TypeVar("M", bound=FedMessage)


@dataclass
class Run:
    result: list[float] | None
    error: ProtocolAborted | None
    aggregator: Aggregator
    parties: dict[str, Party] = field(default_factory=dict)
    transcript: list[bytes] = field(default_factory=list)  # every frame the relay carried
    sent_bytes: dict[str, int] = field(default_factory=dict)  # frame bytes each party sent
    party_seconds: dict[str, float] = field(default_factory=dict)
    aggregator_seconds: float = 0.0
    party_cpu: dict[str, float] = field(default_factory=dict)  # CPU time: robust to a busy host
    aggregator_cpu: float = 0.0


def to_survivors(lists: Survivors) -> dict[str, Survivors]:
    """The one survivor list, addressed to every survivor (in the list's order)."""
    return dict.fromkeys(lists.survivors, lists)


def identities(names: Sequence[str]) -> dict[str, bytes]:
    """Fresh long-term X25519 private keys, as enrollment would create them."""
    return {name: crypto.new_private_key() for name in names}


def invite(
    computation_id: str, keys: Mapping[str, bytes], threshold: int, params: Params
) -> Invitation:
    public = {name: crypto.public_key(private) for name, private in keys.items()}
    return Invitation(
        computation_id=computation_id, parties=public, threshold=threshold, params=params
    )


def run(
    invitation: Invitation,
    keys: Mapping[str, bytes],
    vectors: Mapping[str, Sequence[float]],
    *,
    drop: Mapping[str, Round] | None = None,
    tamper: Tamper | None = None,
    record: bool = True,
    pair_caches: Mapping[str, dict[tuple[str, bytes], bytes]] | None = None,
    threads: int = 1,
) -> Run:
    """Run the five rounds. ``drop[p] = r``: party p goes silent from round r on.
    ``tamper(party, message)`` may replace any message the relay carries to a party.
    ``threads`` > 1: the parties of a round work on that many threads (they are
    separate devices; the X25519 exchanges and numpy additions run without the
    GIL, so a second core really works); the server stays on this thread."""
    drop = drop or {}
    aggregator = Aggregator(invitation, threads=threads)  # its unmasking too
    caches = pair_caches or {}
    out = Run(result=None, error=None, aggregator=aggregator)
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def setup(p: str) -> Party:  # a device's setup (encoding its input, fresh keys) is its work
        started, cpu = time.perf_counter(), time.thread_time()
        party = Party(invitation, p, keys[p], vectors[p], caches.get(p))
        out.party_seconds[p] = time.perf_counter() - started
        out.party_cpu[p] = time.thread_time() - cpu
        return party

    names = list(invitation.parties)
    made = pool.map(setup, names) if pool is not None else map(setup, names)
    out.parties.update(zip(names, made, strict=True))
    parties = out.parties

    def on_server(step: Callable[[], None]) -> None:
        started, cpu, workers = time.perf_counter(), time.thread_time(), aggregator.worker_cpu
        step()
        out.aggregator_seconds += time.perf_counter() - started
        # its own thread and its unmasking threads (ring.apply_all)
        out.aggregator_cpu += time.thread_time() - cpu + aggregator.worker_cpu - workers

    def party_work(party: str, step: Callable[[], FedMessage]) -> bytes:
        """One party's step and the framing of its answer, timed in its own thread."""
        started, cpu = time.perf_counter(), time.thread_time()
        frame = codec.encode_frame(step())  # the party's share of the relay's work
        out.party_seconds[party] = out.party_seconds.get(party, 0.0) + time.perf_counter() - started
        out.party_cpu[party] = out.party_cpu.get(party, 0.0) + time.thread_time() - cpu
        return frame

    def round_(work: Iterable[tuple[str, Callable[[], FedMessage]]]) -> None:
        """Every party's work of one round (on the pool, if any), each answer handed
        to the aggregator, in order, on this thread. ``work`` is consumed lazily:
        with a pool, each party starts as soon as the server framed its message,
        so the server's framing of a round overlaps the parties' work on it."""
        if pool is not None:
            answers = [(party, pool.submit(party_work, party, step)) for party, step in work]
            frames: Iterable[tuple[str, bytes]] = ((p, f.result()) for p, f in answers)
        else:
            frames = ((party, party_work(party, step)) for party, step in work)
        for party, frame in frames:
            out.sent_bytes[party] = out.sent_bytes.get(party, 0) + len(frame)
            if record:
                out.transcript.append(frame)
            on_server(lambda f=frame: aggregator.handle(codec.decode_frame(f)))  # type: ignore[misc]

    def carried(
        party: str, message: M, step: Callable[[M], FedMessage]
    ) -> Callable[[], FedMessage]:
        """The server frames ``message`` (its work); the party parses it, after
        ``tamper``, and answers (its work). Only the frame is kept, as a transport
        would: the server's message is freed once sent."""
        frames: list[bytes] = []
        on_server(lambda: frames.append(codec.encode_frame(message)))
        if record:
            out.transcript.append(frames[0])
        kind = type(message)

        def receive() -> FedMessage:
            parsed = codec.decode_frame(frames[0])
            assert isinstance(parsed, kind)
            if tamper is not None:
                parsed = tamper(party, parsed)
                assert isinstance(parsed, kind)
            return step(parsed)

        return receive

    def answering(party: str, round_name: Round) -> bool:
        return party not in drop or ROUNDS.index(round_name) < ROUNDS.index(drop[party])

    def relay(
        round_name: Round,
        close: Callable[[], Mapping[str, M]],
        step: Callable[[Party, M], FedMessage],
    ) -> None:
        """Close the server's round (its work), carry each message it returns to its
        party and hand the answers of those still answering back to the server."""
        messages: dict[str, M] = {}
        on_server(lambda: messages.update(close()))
        round_(  # each message leaves the dict as it is sent (1,000 rosters: 39,000 entries)
            (p, carried(p, messages.pop(p), functools.partial(step, parties[p])))
            for p in list(messages)
            if answering(p, round_name)
        )

    try:
        round_([(p, party.advertise) for p, party in parties.items() if answering(p, "advertise")])
        relay("shares", aggregator.rosters, Party.share_keys)
        relay("masked", aggregator.inboxes, Party.masked_input)
        relay("consistency", lambda: to_survivors(aggregator.survivor_list()), Party.consistency)
        relay("unmask", aggregator.unmask_requests, Party.unmask)
        result: list[float] = []
        on_server(lambda: result.extend(aggregator.result()))
        out.result = result
    except ProtocolAborted as exc:
        out.error = exc
    finally:
        if pool is not None:
            pool.shutdown()
    return out


@dataclass
class Benchmark:
    parties: int
    length: int
    dropped: int  # parties that went silent (see ``drop_round``)
    drop_round: str
    warm: bool  # devices held their long-term pair secrets already
    threads: int  # the parties of a round worked on this many threads
    neighbours: int  # k of the SecAgg+ graph (parties - 1: complete)
    threshold: int  # shares needed per secret
    secure_seconds: float  # the whole simulated protocol, every party in this one process
    secure_cpu_seconds: float  # the same run's CPU time (what a busy, shared host cannot inflate)
    party_cpu_seconds: float
    aggregator_cpu_seconds: float
    party_seconds: float  # mean time one device spends in its steps (incl. framing)
    aggregator_seconds: float  # the server's share: routing, checks, reconstruction
    plain_seconds: float  # the plaintext protocol: float64 vectors framed, parsed, summed
    plain_aggregator_seconds: float  # its server side (parse + sum)
    plain_party_seconds: float  # its party side (framing one vector)
    bytes_per_party: float  # frame bytes a party sends over all rounds
    plain_bytes_per_party: int  # the vector as raw float64
    max_abs_error: float  # against the plain sum of the survivors


def warm_caches(
    invitation: Invitation, keys: Mapping[str, bytes]
) -> dict[str, dict[tuple[str, bytes], bytes]]:
    """The long-term pair secrets each party would hold after earlier computations
    with the same neighbours (what a device's ``pair_cache`` converges to)."""
    out: dict[str, dict[tuple[str, bytes], bytes]] = {}
    for party, neighbours in invitation.neighbourhoods().items():
        private = crypto.load(keys[party])
        out[party] = {
            (v, invitation.parties[v]): crypto.agree(private, invitation.parties[v])
            for v in neighbours
        }
    return out


BENCH_BOUND, BENCH_FRAC_BITS = 1024.0, 24  # values in [-1000, 1000], scale 2**24


def benchmark(
    parties: int = 100,
    length: int = 10_000,
    seed: int = 0,
    dropout: float = 0.1,
    drop_round: Round = "consistency",
    warm: bool = False,
    threads: int = 1,
) -> Benchmark:
    """Secure sum of ``parties`` random vectors of ``length`` values in [-1000, 1000]
    (the ring :meth:`Params.fitting` picks for that bound: 64 bits; scale 2**24), a bare majority threshold, and ``dropout`` of the
    parties going silent from ``drop_round`` on ("consistency": right after sending
    their masked input; "masked": after sharing keys, before masking, the case
    where the server must rebuild their pairwise masks), against the plaintext
    protocol over the same data. ``warm``: every device already holds its long-term
    pair secrets with its neighbours from earlier computations (see :class:`Party`).
    ``threads``: see :func:`run`; the whole run's CPU time then counts every thread
    (``process_time``), so it never hides the second core's work."""
    rng = np.random.default_rng(seed)
    names = [f"device-{i:05d}" for i in range(parties)]
    data = rng.uniform(-1e3, 1e3, (parties, length))
    vectors = {name: data[i] for i, name in enumerate(names)}
    keys = identities(names)
    params = Params.fitting(length, BENCH_BOUND, parties, frac_bits=BENCH_FRAC_BITS)  # 64-bit
    invitation = invite("bench", keys, parties // 2 + 1, params)
    silent = random.Random(seed).sample(names, int(parties * dropout))
    drop: dict[str, Round] = dict.fromkeys(silent, drop_round)
    caches = warm_caches(invitation, keys) if warm else None

    # The setup's garbage (keys, caches, data, the imports before it) is collected
    # before the clock starts: left pending, it set off a full collection in the
    # run (~30 ms at 100 parties) that paid for the harness, not the protocol.
    # The collections the protocol's own allocations set off are measured.
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    outcome = run(
        invitation, keys, vectors, drop=drop, record=False, pair_caches=caches, threads=threads
    )
    secure, secure_cpu = time.perf_counter() - started, time.process_time() - cpu
    if outcome.result is None:
        raise RuntimeError(f"benchmark aborted: {outcome.error}")
    included = [i for i, name in enumerate(names) if name in outcome.aggregator.survivors]

    plain_party = plain_server = 0.0
    started = time.perf_counter()
    total = np.zeros(length)
    for i in included:
        t0 = time.perf_counter()
        frame = data[i].astype("<f8").tobytes()
        t1 = time.perf_counter()
        total += np.frombuffer(frame, dtype="<f8")
        plain_party += t1 - t0
        plain_server += time.perf_counter() - t1
    plain_seconds = time.perf_counter() - started

    shape = invitation.shape()
    return Benchmark(
        parties=parties,
        length=length,
        dropped=len(silent),
        drop_round=drop_round,
        warm=warm,
        threads=threads,
        neighbours=shape.neighbours,
        threshold=shape.threshold,
        secure_seconds=secure,
        secure_cpu_seconds=secure_cpu,
        party_cpu_seconds=sum(outcome.party_cpu.values()) / parties,
        aggregator_cpu_seconds=outcome.aggregator_cpu,
        party_seconds=sum(outcome.party_seconds.values()) / parties,
        aggregator_seconds=outcome.aggregator_seconds,
        plain_seconds=plain_seconds,
        plain_aggregator_seconds=plain_server,
        plain_party_seconds=plain_party / max(len(included), 1),
        bytes_per_party=sum(outcome.sent_bytes.values()) / parties,
        plain_bytes_per_party=8 * length,
        max_abs_error=float(np.max(np.abs(np.asarray(outcome.result) - total))),
    )
