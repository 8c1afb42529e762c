"""The client's TLS context reads its trust anchors at the first handshake
(issue 16: certifi's bundle cost every CLI call ~45 ms), and verifies exactly
as before: a server whose certificate no anchor vouches for is refused, the
same server is accepted once ``SSL_CERT_FILE`` names its CA."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edgefleet.client import Client
from edgefleet.client.errors import ConnectionFailed
from edgefleet.client.tls import DeferredTrustContext, client_context
from tests.support.tls import self_signed


class Hello(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = b'{"hello": "tls"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(URL of an HTTPS server on loopback, its self-signed certificate)."""
    cert, key = self_signed(tmp_path / "tls")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()


def test_the_context_is_strict_and_reads_nothing_until_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = client_context(True)
    assert isinstance(context, DeferredTrustContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0
    context.load_anchors()
    assert context.cert_store_stats()["x509_ca"] > 100  # certifi's bundle, as httpx reads it
    assert client_context(False) is False  # asked for: httpx's own unverified context


def test_an_unknown_certificate_is_refused(
    https: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    url, _ = https
    with (
        Client(url, "t0k") as client,
        pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get("/hello")


def test_ssl_cert_file_names_the_anchor_as_it_does_for_httpx(
    https: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = https
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with Client(url, "t0k") as client:
        assert client.get("/hello") == {"hello": "tls"}
    with Client(url.replace("127.0.0.1", "localhost"), "t0k") as client:
        assert client.get("/hello") == {"hello": "tls"}  # the SAN's name
