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
import resource
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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
T = TypeVar("T")


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

    Each round: the server closes the round and frames its messages; the parties,
    in batches of whole parties, parse theirs and answer; the server parses and
    takes each batch of answers as it is done. ``threads`` > 1: the batches run on
    that many threads (the parties are separate devices), so a thread runs long
    stretches of device work whose heavy parts (X25519, AES-CTR, numpy) release
    the GIL, while the server (this thread; its unmasking uses the threads too)
    parses the batches already done. One pool task per message instead, with the
    server's parsing waiting on each, handed the GIL back and forth thousands of
    times per round and made 1,000 parties slower on two threads than on one."""
    drop = drop or {}
    aggregator = Aggregator(invitation, threads=threads)  # its unmasking too
    caches = pair_caches or {}
    out = Run(result=None, error=None, aggregator=aggregator)
    crew = Crew(threads)
    names = list(invitation.parties)

    def on_server(step: Callable[[], T]) -> T:
        started, cpu, workers = time.perf_counter(), time.thread_time(), aggregator.worker_cpu
        try:
            return step()
        finally:
            out.aggregator_seconds += time.perf_counter() - started
            # its own thread and its unmasking threads (ring.apply_all)
            out.aggregator_cpu += time.thread_time() - cpu + aggregator.worker_cpu - workers

    def setup(p: str) -> Party:  # a device's setup (encoding its input, fresh keys) is its work
        return Party(invitation, p, keys[p], vectors[p], caches.get(p))

    for made, batch in crew.each(out, [(p, functools.partial(setup, p)) for p in names]):
        out.parties.update(zip(made, batch, strict=True))
    parties = out.parties

    def answers(work: list[tuple[str, Callable[[], FedMessage]]]) -> None:
        """The parties answer (on the crew); the server takes each batch of answers,
        in order, as soon as it is done: its parsing overlaps the parties' work."""
        done = crew.each(out, [(p, functools.partial(_framed, step)) for p, step in work])
        for names_, frames in done:
            for party, frame in zip(names_, frames, strict=True):
                out.sent_bytes[party] = out.sent_bytes.get(party, 0) + len(frame)
            if record:
                out.transcript.extend(frames)
            on_server(functools.partial(_take, aggregator, frames))

    def answering(party: str, round_name: Round) -> bool:
        return party not in drop or ROUNDS.index(round_name) < ROUNDS.index(drop[party])

    def relay(
        round_name: Round,
        close: Callable[[], Mapping[str, M]],
        step: Callable[[Party, M], FedMessage],
    ) -> None:
        """Close the server's round and frame each message it returns (its work; each
        message is freed once framed, as a transport would: 1,000 rosters hold 39,000
        entries), then carry each frame to its party, if still answering."""

        def frame_all() -> list[tuple[str, bytes]]:
            messages = dict(close())
            if len(messages) > 1 and len({id(m) for m in messages.values()}) == 1:
                # one message to everyone (the survivor list, which the server's
                # orchestrator broadcasts): framed once, as a transport sends a broadcast
                frame = codec.encode_frame(next(iter(messages.values())))
                return [(p, frame) for p in messages]
            return [(p, codec.encode_frame(messages.pop(p))) for p in list(messages)]

        framed = on_server(frame_all)
        if record:
            out.transcript.extend(frame for _, frame in framed)
        answers(
            [
                (p, functools.partial(_receive, frame, step, parties[p], tamper))
                for p, frame in framed
                if answering(p, round_name)
            ]
        )

    try:
        answers([(p, party.advertise) for p, party in parties.items() if answering(p, "advertise")])
        relay("shares", aggregator.rosters, Party.share_keys)
        relay("masked", aggregator.inboxes, Party.masked_input)
        relay("consistency", lambda: to_survivors(aggregator.survivor_list()), Party.consistency)
        relay("unmask", aggregator.unmask_requests, Party.unmask)
        out.result = on_server(aggregator.result)
    except ProtocolAborted as exc:
        out.error = exc
    finally:
        crew.close()
    return out


def _take(aggregator: Aggregator, frames: list[bytes]) -> None:
    """The server parses each answer and hands it to the aggregator."""
    for frame in frames:
        aggregator.handle(codec.decode_frame(frame))


def _framed(step: Callable[[], FedMessage]) -> bytes:
    """A party's step and the framing of its answer (the party's share of the relay)."""
    return codec.encode_frame(step())


def _receive(
    frame: bytes, step: Callable[[Party, M], FedMessage], party: Party, tamper: Tamper | None
) -> FedMessage:
    """The party parses the server's frame (after ``tamper``) and answers it."""
    parsed = codec.decode_frame(frame)
    if tamper is not None:
        changed = tamper(party.party_id, parsed)
        assert type(changed) is type(parsed)
        parsed = changed
    return step(party, parsed)  # type: ignore[arg-type]


class Crew:
    """The threads the simulated parties work on. :meth:`each` deals batches of
    whole parties to them, in order, and times every party's steps (wall) and
    every batch (the thread's CPU, shared evenly among the batch's parties: the
    benchmark reports the mean)."""

    # Batches of up to this many parties: long stretches for a thread, yet small
    # enough that a thread slowed by a busy host does not hold up the round's end.
    BATCH = 16

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, "fed-party") if threads > 1 else None

    def each(
        self, out: Run, work: Sequence[tuple[str, Callable[[], T]]]
    ) -> Iterator[tuple[list[str], list[T]]]:
        """Every party's step, batch by batch in ``work``'s order: each batch's
        parties and their results, yielded as soon as that batch is done."""

        def batch(part: Sequence[tuple[str, Callable[[], T]]]) -> tuple[list[T], float]:
            cpu, results = time.thread_time(), []
            for party, step in part:
                started = time.perf_counter()
                results.append(step())
                out.party_seconds[party] = (
                    out.party_seconds.get(party, 0.0) + time.perf_counter() - started
                )
            return results, time.thread_time() - cpu

        size = min(self.BATCH, max(1, len(work) // (self.threads * 8)))
        parts = [work[i : i + size] for i in range(0, len(work), size)]
        done = map(batch, parts) if self._pool is None else self._pool.map(batch, parts)
        for part, (results, cpu) in zip(parts, done, strict=True):
            for party, _ in part:
                out.party_cpu[party] = out.party_cpu.get(party, 0.0) + cpu / len(part)
            yield [party for party, _ in part], results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


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
    # voluntary context switches of the process during the run: with threads, each is
    # mostly a thread that came back from a GIL-free call (X25519, AES-CTR, numpy) and
    # slept until the other thread let go of the GIL; the count shows why a second
    # thread may not shorten the run (on a 2-vCPU VM each such hand-off costs tens of us)
    switches: int
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
    # The collections the protocol's own allocations set off are measured. The
    # setup's survivors (the invitation, keys, caches, the imported modules) are
    # then frozen for the run, as a long-running device or server holds them in
    # its oldest generation: the run's full collections walk what the protocol
    # allocated, not the harness's millions of objects (~0.1 s at 1,000 parties).
    gc.collect()
    gc.freeze()
    try:
        switched = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
        started, cpu = time.perf_counter(), time.process_time()
        outcome = run(
            invitation, keys, vectors, drop=drop, record=False, pair_caches=caches, threads=threads
        )
        secure, secure_cpu = time.perf_counter() - started, time.process_time() - cpu
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switched
    finally:
        gc.unfreeze()
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
        switches=switches,
        party_seconds=sum(outcome.party_seconds.values()) / parties,
        aggregator_seconds=outcome.aggregator_seconds,
        plain_seconds=plain_seconds,
        plain_aggregator_seconds=plain_server,
        plain_party_seconds=plain_party / max(len(included), 1),
        bytes_per_party=sum(outcome.sent_bytes.values()) / parties,
        plain_bytes_per_party=8 * length,
        max_abs_error=float(np.max(np.abs(np.asarray(outcome.result) - total))),
    )
