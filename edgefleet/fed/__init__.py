"""Federated computations: secure aggregation, imported by both the server and the agent.

The protocol is Bonawitz et al., "Practical Secure Aggregation for
Privacy-Preserving Machine Learning" (CCS 2017) with the SecAgg+ neighbourhood
graph of Bell et al. (CCS 2020), the server a relay that can read nothing but
the final sum. Pure state machines, no I/O: the agent and the server carry the
messages of :mod:`.messages`.

Each party u works with its k neighbours N(u) only (:mod:`.graph`: a Harary
graph over an order derived from the invitation's digest; k = O(log n), the
complete graph when n <= 20) and Shamir-shares to its holders N(u) + {u} with
threshold t, a majority of them::

    device u (Party)                        server (Aggregator)                 device v in N(u)
             <-- Invitation (parties + long-term keys, t, Params, Task, rates) ------->
    round 0  advertise: s_u, c_u pub + tags --> U1 ---- rosters (N(v) only) ------> check tags
             (tag_uv = HMAC(K_uv, keys || SHA-256(invitation)), K_uv from ECDH(lt_u, lt_v))
    round 1  Shamir(s_u priv, b_u) batched,
             AES-GCM record to each v --------> U2 ---- inboxes (opaque bytes) --> decrypt
    round 2  y_u = x_u + PRG(b_u)
                 + sum_{v in N(u), v>u} PRG(s_uv) - sum_{v<u} PRG(s_uv) --> U3
    round 3  <-- survivors U3, dropped U2-U3 ---
             HMAC(K_uv, U3, dropped) for each
             surviving neighbour -------------> U4 ---- each party's tags ------>
    round 4  >= t holders confirmed this U3?
             s-share of each dropped,
             b-share of each survivor --------> U5 >= t per secret: rebuild s_d, b_u;
                                               sum y_u - PRG(b_u) -/+ PRG(s_ud) = sum x_u

- :mod:`.messages`   the pydantic models a transport carries (``type`` = ``fed.*``)
- :mod:`.codec`      binary share records and message frames, parsed strictly
- :mod:`.party`      device side; :mod:`.aggregator` server side
- :mod:`.graph`      the neighbourhood graph and how k and t follow from n and the rates
- :mod:`.shamir`     Shamir sharing over GF(2**256 + 297), batched, Lagrange cached
- :mod:`.ring`       fixed point in Z_{2^k} as numpy limbs, the AES-CTR mask generator
- :mod:`.crypto`     X25519 (libsodium), AES (``cryptography``), HMAC/HKDF over the stdlib's SHA-256
- :mod:`.stats`      statistics as secure sums (what each device contributes)
- :mod:`.simulate`   an in-process relay for tests, and :func:`~.simulate.benchmark`

Trust assumptions
-----------------
- **The server may be malicious, and up to a fraction ``corruption`` of the
  parties may collude with it** (:class:`~.messages.Invitation`, default 5 %).
  It learns only the sum over U3 (and who dropped), as long as no holder set
  N(u) + {u} contains t colluders; :mod:`.graph` sizes k so that this fails
  with probability <= 2**-40 over the random graph, and so that dropouts up to
  ``dropout`` (default 10 %) leave every secret t holders except with
  probability <= 2**-20. A graph the server dislikes costs it a new computation
  id per re-roll: each re-roll is one more try at that 2**-40 event.
- **Ephemeral keys are authenticated by the long-term keys.** X25519 cannot sign,
  so each advertisement carries, for each neighbour v, an HMAC keyed from
  ECDH(long-term u, long-term v): the server cannot swap ephemeral keys without
  a long-term private key. The long-term keys come from the invitation, which
  the server relays from enrollment; the agent pins each peer's key on first
  sight (``agent/fed_pins.py``) and declines a computation that shows another,
  so after first contact the server cannot substitute a key. The tags also cover
  a digest of the whole invitation (parties, t, encoding, task, rates: hence
  the graph), so a server that shows two parties different invitations is
  caught in round 1.
- **Equivocation is caught (Bonawitz's round-4 consistency check).** Each party
  MACs the survivor list it was shown for each surviving neighbour, with the
  same long-term pair key (HMAC rather than Ed25519 signatures: devices already
  hold X25519 long-term keys from enrollment, a MAC proves to exactly the one
  peer that needs convincing, and no second key type has to be enrolled,
  distributed and pinned). A party reveals shares only if t of its holders
  (itself included) confirmed the very list it confirmed; the server can forge
  no tag, so showing different lists to different parties leaves each group
  short of t and nobody reveals anything. On top, a party answers one unmask
  request only, never with both shares of one peer, and refuses a list on which
  fewer than t of its holders survived (the "too many of its neighbours
  dropped" refusal), so t majority shares of one secret cannot be collected
  under two stories.
- **Robustness, not verifiability**: a device that sends a wrong share is caught
  (reconstructed s-keys are checked against the advertised public key, seeds
  against a SHA-256 commitment) and a bad share is skipped when a spare holder
  exists; otherwise the computation aborts. A device may still lie about its own
  input within the bound.
"""

# Names are loaded on first use (PEP 562): the wire protocol imports
# ``edgefleet.fed.messages`` on every agent, and the crypto behind Party and
# Aggregator (several MB) should only load on devices that compute.
_LAZY = {
    "Aggregator": "edgefleet.fed.aggregator",
    "Party": "edgefleet.fed.party",
    **{
        name: "edgefleet.fed.errors"
        for name in (
            "BelowThreshold",
            "FedError",
            "ProtocolAborted",
            "ProtocolViolation",
            "TamperedMessage",
            "UnsafeRequest",
        )
    },
    **{
        name: "edgefleet.fed.messages"
        for name in (
            "Abort",
            "AdvertiseKeys",
            "ConsistencyTags",
            "FedMessage",
            "Invitation",
            "MaskedInput",
            "Params",
            "Roster",
            "ShareBundle",
            "ShareInbox",
            "Survivors",
            "Task",
            "UnmaskRequest",
            "UnmaskResponse",
            "decode",
        )
    },
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgefleet.fed' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Abort",
    "AdvertiseKeys",
    "Aggregator",
    "BelowThreshold",
    "ConsistencyTags",
    "FedError",
    "FedMessage",
    "Invitation",
    "MaskedInput",
    "Params",
    "Party",
    "ProtocolAborted",
    "ProtocolViolation",
    "Roster",
    "ShareBundle",
    "ShareInbox",
    "Survivors",
    "TamperedMessage",
    "Task",
    "UnmaskRequest",
    "UnmaskResponse",
    "UnsafeRequest",
    "decode",
]
