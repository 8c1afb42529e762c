"""The agent's TLS client context: as strict as ``ssl.create_default_context``,
cheaper to hold for months (issue 18: an idle agent within 40 MB RSS).

Imported only when a server (or proxy) is ``https://``: importing it loads
``ssl`` (agent/footprint.py keeps an http-only agent free of it).

Verification is exactly the default context's: ``PROTOCOL_TLS_CLIENT`` sets
``CERT_REQUIRED`` and host name checking, the protocol floor and options come
from OpenSSL's configuration as before. Two things differ, both in what is
*loaded*, never in what is accepted:

- Trust anchors. ``--ca-file`` is loaded alone, as before. Without it, the
  default context read the system's whole CA bundle into the store (~140
  certificates, ~1.3 MB RSS for the agent's lifetime). OpenSSL can instead
  look an issuer up by subject hash in the system's hashed directory
  (``/etc/ssl/certs``, kept by ``update-ca-certificates`` in step with the
  bundle) when a handshake needs it, so that directory is used alone when it
  holds hashed certificates. A ``SSL_CERT_FILE`` the operator set is still
  read (with the directory), as OpenSSL's defaults read it; a system without
  a hashed directory (RHEL's ``/etc/pki/tls/certs`` holds only bundles) gets
  the bundle; a system with neither gets certifi's, when installed.
- Host names. ``ssl`` encodes the server name with the ``idna`` codec, which
  loads ``encodings.idna``, ``stringprep`` and ``unicodedata`` (~0.3 MB) to
  return an ASCII name unchanged. An ASCII name is passed on after the same
  label checks that codec makes; any other name still goes through it.
"""

from __future__ import annotations

import os
import ssl
import sys
from pathlib import Path

__all__ = ["AgentTLSContext", "client_context", "trust_anchors"]


class AgentTLSContext(ssl.SSLContext):
    """A ``PROTOCOL_TLS_CLIENT`` context that encodes ASCII host names itself."""

    def _encode_hostname(self, hostname: str | bytes | None) -> str | None:
        if isinstance(hostname, str) and hostname.isascii():
            # What encodings.idna's encode does with an ASCII name: check, keep.
            labels = hostname.split(".")
            if any(not 0 < len(label) < 64 for label in labels[:-1]) or len(labels[-1]) >= 64:
                raise UnicodeError("label empty or too long")
            return hostname
        encoded: str | None = super()._encode_hostname(hostname)  # type: ignore[misc]
        return encoded


def _hashed(directory: str | None) -> bool:
    """Whether ``directory`` holds certificates named by subject hash
    (``5ad8a5d6.0``), which OpenSSL can look up one at a time."""
    if not directory or not os.path.isdir(directory):
        return False
    with os.scandir(directory) as entries:
        for entry in entries:
            stem, dot, suffix = entry.name.partition(".")
            if len(stem) == 8 and dot and suffix.isdigit() and _hex(stem):
                return True
    return False


def _hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def trust_anchors(ca_file: str | None) -> tuple[str | None, str | None]:
    """(cafile, capath) the agent trusts: ``ca_file`` alone when given, else the
    system's hashed directory (read lazily) plus an operator's ``SSL_CERT_FILE``,
    else the system bundle, else certifi's bundle."""
    if ca_file:
        return ca_file, None
    paths = ssl.get_default_verify_paths()  # SSL_CERT_FILE/SSL_CERT_DIR, else OpenSSL's
    chosen_file = (
        os.environ.get(paths.openssl_cafile_env) if not sys.flags.ignore_environment else None
    )
    cafile = paths.cafile if chosen_file else None
    if _hashed(paths.capath):
        return cafile, paths.capath
    if paths.cafile:
        return paths.cafile, None
    try:
        import certifi
    except ImportError:  # no anchors at all: every handshake fails, as it did before
        return None, None
    return certifi.where(), None


def client_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """A strict client context trusting :func:`trust_anchors` (``ca_file``: the
    operator's ``--ca-file``)."""
    context = AgentTLSContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, host names checked
    cafile, capath = trust_anchors(str(ca_file) if ca_file else None)
    if cafile or capath:
        context.load_verify_locations(cafile=cafile, capath=capath)
    keylog = os.environ.get("SSLKEYLOGFILE")  # as create_default_context: for debugging
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context
