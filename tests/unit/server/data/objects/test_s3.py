"""The S3 store against moto's S3 server: what the SDK fails with (the service's
answer, an unreachable endpoint, a missing local file) reaches callers as one
ObjectStoreError naming the key; nothing else is caught."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefleet.server.data.objects.base import ObjectStoreError
from edgefleet.server.data.objects.s3 import S3Store
from tests.support.procs import free_port

CREDS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import moto.server as moto_server

    for name, value in CREDS.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def test_objects_round_trip_and_failures_are_object_store_errors(
    endpoint: str, tmp_path: Path
) -> None:
    store = S3Store(f"s3://bucket/pre?endpoint={endpoint}")
    store.client.create_bucket(Bucket="bucket")
    source = tmp_path / "a.bin"
    source.write_bytes(b"x" * 1000)
    await store.put("a", source)
    assert b"".join([c async for c in store.read("a")]) == b"x" * 1000
    await store.delete("a")

    with pytest.raises(ObjectStoreError, match="cannot read 'a' from s3://bucket"):
        _ = [c async for c in store.read("a")]  # the service answers NoSuchKey
    with pytest.raises(ObjectStoreError, match="cannot store 'b' in s3://bucket"):
        await store.put("b", tmp_path / "missing.bin")  # no such local file
    elsewhere = S3Store("s3://nobucket?endpoint=http://127.0.0.1:9")  # nothing listens
    elsewhere.client.meta.config.retries = {"max_attempts": 0}
    with pytest.raises(ObjectStoreError, match="cannot delete 'c' from s3://nobucket"):
        await elsewhere.delete("c")
