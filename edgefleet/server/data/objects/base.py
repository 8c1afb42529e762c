"""The object store contract: where uploaded files' bytes live.

Implementations sit side by side (``directory.py``, ``s3.py``) and are
chosen by the URL in ``--object-store`` through :data:`STORES`, imported only
when chosen (boto3 is optional and loads only for ``s3://``).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import Protocol


class ObjectStoreError(Exception):
    """The store failed or is misconfigured; ``message`` says how, in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ObjectStore(Protocol):
    async def put(self, key: str, source: Path) -> None:
        """Store the file at ``source`` under ``key`` (replacing any object there),
        durably, before returning. ``source`` may be moved or deleted afterwards."""

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; raises ObjectStoreError if it is missing."""

    async def delete(self, key: str) -> None:
        """Remove the object if present."""


STORES = {
    "file": "edgefleet.server.data.objects.directory:DirectoryStore",
    "s3": "edgefleet.server.data.objects.s3:S3Store",
}


@lru_cache(maxsize=8)
def open_store(url: str | None, data_dir: Path) -> ObjectStore:
    """The store for ``--object-store`` (default: ``objects/`` in the data dir)."""
    if not url:
        scheme, target = "file", str(data_dir / "objects")
    elif "://" in url:
        scheme, _, rest = url.partition("://")
        target = url if scheme != "file" else rest
    else:
        scheme, target = "file", url
    path = STORES.get(scheme)
    if path is None:
        raise ObjectStoreError(
            f"--object-store {url!r}: unsupported scheme {scheme!r} (use a directory or s3://)"
        )
    module, _, name = path.partition(":")
    store: ObjectStore = getattr(importlib.import_module(module), name)(target)
    return store
