"""The client's TLS context: certificates checked as httpx checks them, the
trust anchors read at the first handshake instead of when a client is made.

httpx builds its default context in ``httpx.Client()`` by parsing certifi's
whole CA bundle, ~240 M instructions (~45 ms of CPU), the largest single cost
of a CLI call, and every call to an ``http://`` server paid it without ever
shaking hands (issue 16). :func:`client_context` gives httpx a context that is
already strict (``PROTOCOL_TLS_CLIENT``: ``CERT_REQUIRED``, host names checked,
exactly what ``ssl.create_default_context`` sets) and reads the same anchors
httpx would (``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi) before its
first ``wrap_socket``/``wrap_bio``. Nothing is verified less: until the
anchors are read no handshake can start, and none can succeed without them.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
from typing import Any


class DeferredTrustContext(ssl.SSLContext):
    """A strict client context whose CA certificates load on first use."""

    _anchors: tuple[str | None, str | None]
    _loaded: bool
    _lock: threading.Lock

    def __new__(cls, cafile: str | None = None, capath: str | None = None) -> DeferredTrustContext:
        context = super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)
        context._anchors = (cafile, capath)
        context._loaded = False
        context._lock = threading.Lock()
        # What create_default_context does besides loading: a key log for debugging.
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog and not sys.flags.ignore_environment:
            context.keylog_filename = keylog
        return context

    def load_anchors(self) -> None:
        """Read the trust anchors now (once; later calls do nothing)."""
        with self._lock:
            if self._loaded:
                return
            cafile, capath = self._anchors
            if cafile is None and capath is None:
                import certifi

                cafile = certifi.where()
            self.load_verify_locations(cafile=cafile, capath=capath)
            self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load_anchors()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load_anchors()
        return super().wrap_bio(*args, **kwargs)


def client_context(verify: bool | str) -> ssl.SSLContext | bool | str:
    """What to give httpx as ``verify``: for ``True``, a :class:`DeferredTrustContext`
    with the anchors httpx itself would pick (``SSL_CERT_FILE``, ``SSL_CERT_DIR``,
    certifi); ``False`` and a CA path go to httpx unchanged."""
    if verify is not True:
        return verify
    if os.environ.get("SSL_CERT_FILE"):
        return DeferredTrustContext(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return DeferredTrustContext(capath=os.environ["SSL_CERT_DIR"])
    return DeferredTrustContext()
