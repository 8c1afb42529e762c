"""Errors of the federated protocol::

FedError
 +-- ProtocolViolation     one message (or call) is out of place or malformed; it was
 |                         refused and the state machine is unchanged. On the server
 |                         the sender may simply be counted as dropped.
 +-- ProtocolAborted       the computation is over and nothing is released; ``.reason``
      +-- BelowThreshold   fewer than t parties are left at some round
      +-- TamperedMessage  a message failed authentication (AES-GCM tag, key HMAC,
      |                    self-mask commitment, reconstructed key mismatch)
      +-- UnsafeRequest    an unmask request would reveal both shares of one peer

Third-party errors (``cryptography``'s ``InvalidTag``, pydantic's
``ValidationError`` on a decrypted payload, pycryptodome's ``ValueError``) are
translated into these at the point where they occur.
"""

from __future__ import annotations


class FedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProtocolViolation(FedError):
    pass


class ProtocolAborted(FedError):
    pass


class BelowThreshold(ProtocolAborted):
    pass


class TamperedMessage(ProtocolAborted):
    pass


class UnsafeRequest(ProtocolAborted):
    pass
