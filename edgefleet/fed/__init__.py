"""Federated computations: secure aggregation, imported by both the server and the agent.

The protocol is Bonawitz et al., "Practical Secure Aggregation for
Privacy-Preserving Machine Learning" (CCS 2017), with the server as a relay that
can read nothing but the final sum. Pure state machines, no I/O: the agent and
the server carry the messages of :mod:`.messages` over the agent connection.

::

    device u (Party)                        server (Aggregator)                 device v
             <-- Invitation (parties + long-term keys, t, Params, Task) ------------->
    round 0  advertise: s_u, c_u pub + tags --> U1 ---- rosters ----------------> check tags
             (tag_uv = HMAC(ECDH(lt_u, lt_v), keys || SHA-256(invitation)))
    round 1  Shamir(s_u priv), Shamir(b_u)
             AES-GCM to each v ---------------> U2 ---- inboxes (opaque) -------> decrypt
    round 2  y_u = x_u + PRG(b_u)
                 + sum_{v>u} PRG(s_uv) - sum_{v<u} PRG(s_uv) --> U3
    round 3  <-- survivors U3, dropped U2-U3 ---
             s-share of each dropped,
             b-share of each survivor -------> U4 >= t: rebuild s_d, b_u;
                                               sum y_u - PRG(b_u) -/+ PRG(s_ud) = sum x_u

- :mod:`.messages`   the pydantic models a transport carries (``type`` = ``fed.*``)
- :mod:`.party`      device side; :mod:`.aggregator` server side
- :mod:`.ring`       fixed point in Z_{2^k}, packed vectors, the AES-CTR mask generator
- :mod:`.crypto`     thin calls into ``cryptography`` and pycryptodome's Shamir
- :mod:`.stats`      count/sum/mean/variance/histogram as secure sums
- :mod:`.simulate`   an in-process relay for tests, and :func:`~.simulate.benchmark`

Trust assumptions
-----------------
- **The server is semi-honest** (honest-but-curious): it runs the protocol as
  written and tries to learn from what it sees. It then learns only the sum over
  U3 (and who dropped); each device's input stays hidden behind its self-mask and
  its pairwise masks, and no coalition of fewer than t parties can unmask anyone.
- **Ephemeral keys are authenticated, key directory is not.** X25519 cannot sign,
  so each advertisement carries, for each peer v, an HMAC keyed from
  ECDH(long-term u, long-term v): the server cannot swap ephemeral keys without
  knowing a long-term private key. This is only as good as the long-term public
  keys in the :class:`~.messages.Invitation`, which the server relays from
  enrollment; a device that pins its peers' keys (or gets them another way) gets
  protection against an active key swap, one that trusts the invitation does not.
  The tags also cover a digest of the whole invitation (parties, t, encoding, task),
  so a server that shows two honest parties different invitations is caught in round 1.
- **A lying drop list cannot unmask anyone**: a party answers one unmask request,
  never with both shares of one peer, and t must be a majority, so the server
  cannot collect t s-shares and t b-shares of the same peer from two groups.
  Bonawitz's round-4 consistency check (signatures over U3) is not implemented,
  so a malicious server that equivocates in earlier rounds is out of scope.
- **Robustness, not verifiability**: a device that sends a wrong share is caught
  (reconstructed s-keys are checked against the advertised public key, seeds
  against a SHA-256 commitment) and one bad share is skipped when a spare holder
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
