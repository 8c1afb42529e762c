"""The agent's TLS context against a real TLS server on loopback: as strict as
``ssl.create_default_context`` (another CA refused, another host name refused),
its own CA file alone trusted, and without one the system's hashed directory
read lazily (no certificate parsed before a handshake needs one)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgefleet.agent.tls import AgentTLSContext, client_context, trust_anchors
from edgefleet.agent.websocket.proxy import LIMIT, open_stream
from tests.support.tls import hashed_store, self_signed


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """(port of a TLS echo server on 127.0.0.1, its self-signed CA certificate)."""
    cert, key = self_signed(tmp_path / "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
    try:
        yield listener.sockets[0].getsockname()[1], cert
    finally:
        listener.close()


async def _echo(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> bytes:
    reader, writer = await open_stream(host, port, context)
    try:
        writer.write(b"ping\n")
        return await reader.readline()
    finally:
        writer.close()


async def test_the_ca_file_alone_is_trusted_and_the_context_is_strict(
    server: tuple[int, Path],
) -> None:
    port, cert = server
    context = client_context(cert)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509"] == 1  # the CA file, nothing else
    assert await _echo(port, context) == b"ping\n"
    assert await _echo(port, context, host="localhost") == b"ping\n"


async def test_the_tls_stream_reads_at_the_readers_limit(server: tuple[int, Path]) -> None:
    """asyncio's TLS read buffer, zero-filled per connection and held for the
    WebSocket's whole life, is the reader's limit, not asyncio's 256 KiB (issue 18)."""
    port, cert = server
    reader, writer = await open_stream("127.0.0.1", port, client_context(cert))
    try:
        assert len(writer.transport._ssl_protocol._ssl_buffer) == LIMIT  # type: ignore[attr-defined]
        writer.write(b"ping\n")
        assert await reader.readline() == b"ping\n"
    finally:
        writer.close()


async def test_a_server_of_another_ca_is_refused(server: tuple[int, Path], tmp_path: Path) -> None:
    port, _ = server
    other, _ = self_signed(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"self-signed|unable to get"):
        await _echo(port, client_context(other))


async def test_a_certificate_for_another_host_name_is_refused(server: tuple[int, Path]) -> None:
    port, cert = server
    context = client_context(cert)
    for wrong in ("wrong.example", "bücher.example"):  # an ASCII name and an IDNA one
        with pytest.raises(ssl.SSLCertVerificationError, match=r"[Hh]ostname mismatch"):
            await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=wrong)


def test_host_names_are_encoded_as_the_idna_codec_encodes_them() -> None:
    """The ASCII shortcut gives what ``ssl`` itself gives, errors included."""
    ours = client_context()
    assert isinstance(ours, AgentTLSContext)
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    names = ["127.0.0.1", "Edge.Example.COM", "host.", "", "bücher.example", "xn--bcher-kva.ex"]
    for name in names:
        assert ours._encode_hostname(name) == plain._encode_hostname(name), name  # type: ignore[attr-defined]
    for bad in ["a..b", ".a", "x" * 64 + ".example", "a." + "y" * 64]:
        with pytest.raises(UnicodeError):
            plain._encode_hostname(bad)  # type: ignore[attr-defined]
        with pytest.raises(UnicodeError):
            ours._encode_hostname(bad)  # type: ignore[attr-defined]


async def test_without_a_ca_file_the_hashed_directory_is_read_when_needed(
    server: tuple[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert = server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(hashed_store(tmp_path / "certs", cert)))
    assert trust_anchors(None) == (None, str(tmp_path / "certs"))
    context = client_context()
    assert context.cert_store_stats()["x509"] == 0  # no bundle parsed up front
    assert await _echo(port, context) == b"ping\n"
    assert context.cert_store_stats()["x509"] == 1  # the issuer, looked up by hash

    other, _ = self_signed(tmp_path / "other")
    monkeypatch.setenv("SSL_CERT_DIR", str(hashed_store(tmp_path / "other-certs", other)))
    with pytest.raises(ssl.SSLCertVerificationError):
        await _echo(port, client_context())


async def test_an_operators_ssl_cert_file_is_still_trusted(
    server: tuple[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SSL_CERT_FILE`` is read as OpenSSL's defaults read it; a directory
    without hashed names (RHEL keeps only bundles there) is not used."""
    port, cert = server
    (tmp_path / "bundles").mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "bundles"))
    assert trust_anchors(None) == (str(cert), None)
    assert await _echo(port, client_context()) == b"ping\n"
