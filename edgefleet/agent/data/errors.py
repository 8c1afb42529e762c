"""Errors of the data buffer, each with a message for the workload::

BufferError
 +-- QuotaFull    the device's data quota is used up (HTTP 507)
"""

from __future__ import annotations


class BufferError(Exception):
    """A write the buffer refuses; ``message`` is what the workload is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QuotaFull(BufferError):
    pass
