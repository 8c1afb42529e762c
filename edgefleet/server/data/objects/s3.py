"""Objects in any S3-compatible store: ``--object-store s3://bucket/prefix``.

Endpoint and credentials come from the usual AWS settings (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``) or
from the URL's query: ``s3://bucket/prefix?endpoint=http://minio:9000&region=eu-west-1``.
boto3 is imported here only, when such a URL is configured (``pip install boto3``).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edgefleet.server.data.objects.base import ObjectStoreError

CHUNK = 256 * 1024


class S3Store:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if not parts.netloc:
            raise ObjectStoreError(f"--object-store {url!r}: give s3://BUCKET[/PREFIX]")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            boto3: Any = importlib.import_module("boto3")
        except ImportError as exc:
            raise ObjectStoreError(
                "--object-store s3://... needs boto3: pip install boto3"
            ) from exc
        self.client: Any = boto3.client(
            "s3", endpoint_url=query.get("endpoint"), region_name=query.get("region")
        )
        botocore = importlib.import_module("botocore.exceptions")
        # what a call can fail with: the service's answer, the SDK's own errors, the disk
        self.errors: tuple[type[Exception], ...] = (
            botocore.BotoCoreError,
            botocore.ClientError,
            importlib.import_module("boto3.exceptions").Boto3Error,
            OSError,
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, source: Path) -> None:
        try:
            await asyncio.to_thread(
                self.client.upload_file, str(source), self.bucket, self._key(key)
            )
        except self.errors as exc:
            raise ObjectStoreError(f"cannot store {key!r} in s3://{self.bucket}: {exc}") from exc

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            answer = await asyncio.to_thread(
                self.client.get_object, Bucket=self.bucket, Key=self._key(key)
            )
        except self.errors as exc:
            raise ObjectStoreError(f"cannot read {key!r} from s3://{self.bucket}: {exc}") from exc
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(
                self.client.delete_object, Bucket=self.bucket, Key=self._key(key)
            )
        except self.errors as exc:
            raise ObjectStoreError(f"cannot delete {key!r} from s3://{self.bucket}: {exc}") from exc
