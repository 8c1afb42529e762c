"""Private registries without a server: registry hosts read as engines read them,
the key that seals passwords, and which logins a device receives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgefleet.server.jobs.desired import _pulled_from
from edgefleet.server.registries.crypto import SecretBox, SecretKeyError, load_key
from edgefleet.spec.images import normalize_registry, registry_of, split_reference
from edgefleet.spec.model import AppSpec


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("redis", "docker.io"),
        ("library/redis:7", "docker.io"),
        ("grafana/grafana:11.0", "docker.io"),
        ("docker.io/grafana/grafana", "docker.io"),
        ("index.docker.io/library/redis", "docker.io"),
        ("ghcr.io/example/shop:2.4", "ghcr.io"),
        ("localhost/ef-busybox:test", "localhost"),
        ("127.0.0.1:5000/private/app:1", "127.0.0.1:5000"),
        ("Registry.Example.com:5000/a/b@sha256:abc", "registry.example.com:5000"),
    ],
)
def test_registry_of(image: str, registry: str) -> None:
    assert registry_of(image) == registry


def test_registry_hosts_and_references() -> None:
    assert normalize_registry("https://index.docker.io/v1/") == "docker.io"
    assert normalize_registry("GHCR.io") == "ghcr.io"
    assert normalize_registry("http://127.0.0.1:5000/") == "127.0.0.1:5000"
    for bad in ("", "not a host", "a_b.example.com", "host:port"):
        with pytest.raises(ValueError):
            normalize_registry(bad)
    assert split_reference("redis") == ("redis", "latest")
    assert split_reference("127.0.0.1:5000/app") == ("127.0.0.1:5000/app", "latest")
    assert split_reference("127.0.0.1:5000/app:2") == ("127.0.0.1:5000/app", "2")
    assert split_reference("app@sha256:ab") == ("app", "sha256:ab")


def test_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_key(None, tmp_path)
    path = tmp_path / "secret.key"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_key(None, tmp_path) == key
    box = SecretBox(key)
    token = box.seal("s3cret")
    assert "s3cret" not in token and box.open(token) == "s3cret"
    other = SecretBox(load_key("another passphrase, long enough", tmp_path))
    with pytest.raises(SecretKeyError, match="same --secret-key"):
        other.open(token)
    with pytest.raises(SecretKeyError):
        load_key("short", tmp_path)
    assert load_key(key.decode(), tmp_path / "elsewhere") == key


def test_a_device_gets_only_the_logins_its_images_need() -> None:
    spec = AppSpec.model_validate(
        {"services": {"a": {"image": "ghcr.io/x/a:1"}, "b": {"image": "redis:7"}}}
    )
    logins = {
        "ghcr.io": {"username": "u", "password": "p"},
        "docker.io": {"username": "v", "password": "q"},
        "registry.example.com": {"username": "w", "password": "r"},
    }
    assert set(_pulled_from(spec, logins)) == {"ghcr.io", "docker.io"}
    assert _pulled_from(spec, {}) == {}
