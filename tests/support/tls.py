"""A self-signed certificate for 127.0.0.1 and localhost, for a server started
with ``--tls-cert``/``--tls-key`` and an agent given it as ``--ca-file``."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.procs import ADMIN_TOKEN, ServerProc


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files in ``directory``; the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgefleet test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def hashed_store(directory: Path, cert: Path) -> Path:
    """``directory`` trusting ``cert`` alone, laid out as ``update-ca-certificates``
    lays out /etc/ssl/certs (the certificate under its OpenSSL subject hash), for
    an agent given it as ``SSL_CERT_DIR`` instead of ``--ca-file``."""
    answer = subprocess.run(
        ["openssl", "x509", "-noout", "-subject_hash", "-in", str(cert)],
        capture_output=True,
        text=True,
        check=True,
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{answer.stdout.strip()}.0").write_bytes(cert.read_bytes())
    return directory


class TLSServerProc(ServerProc):
    """A server speaking only HTTPS (and wss to agents) with :func:`self_signed`."""

    def __init__(self, workdir: Path, **kwargs: Any) -> None:
        name = kwargs.get("name", "server")
        self.cert, self.key = self_signed(workdir / f"{name}-tls")
        extra = [*(kwargs.pop("extra_args", None) or [])]
        extra += ["--tls-cert", str(self.cert), "--tls-key", str(self.key)]
        super().__init__(workdir, extra_args=extra, **kwargs)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.url}/api/v1/health", timeout=2, verify=self.trust())

    def http(self, token: str | None = ADMIN_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, verify=self.trust())
