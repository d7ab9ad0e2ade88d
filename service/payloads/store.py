"""The S3 objects that hold large message bodies: get, put and delete through one aiobotocore S3 client."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from service.payloads.pointer import PayloadError
from service.sqs.client import region_for

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

# S3 answers these for an object that is not there (GetObject says NoSuchKey; a HEAD-style answer, 404).
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def create_s3_client(*, max_pool_connections: int = 20) -> AbstractAsyncContextManager[S3Client]:
    """An S3 client context manager; endpoint and credentials come from the environment.

    AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) points it at a local S3-compatible server. botocore retries
    passing failures itself here: a payload read that still fails fails its message, which SQS redelivers.
    """
    config = AioConfig(
        max_pool_connections=max_pool_connections,
        connect_timeout=10,
        read_timeout=60,
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    return get_session().create_client("s3", region_name=region_for(), config=config)


class S3Store:
    """Reads, writes and deletes payload objects; every failure is a PayloadError naming the bucket and key."""

    def __init__(self, client: S3Client | None = None) -> None:
        self.client = client

    @property
    def _client(self) -> S3Client:
        if self.client is None:
            raise RuntimeError("the S3 payload store has no client yet: start S3Payloads first")
        return self.client

    async def get(self, bucket: str, key: str) -> str:
        """The object's content as text (UTF-8)."""
        try:
            response = await self._client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as stream:
                data = await stream.read()
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _error("reading the message payload from S3 failed", exc, bucket, key) from exc
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise PayloadError(f"the message payload is not UTF-8 text: {exc}", bucket=bucket, key=key) from exc

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        """Store `data` as the object `key`."""
        try:
            await self._client.put_object(Bucket=bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _error("storing the message payload in S3 failed", exc, bucket, key) from exc

    async def delete(self, bucket: str, key: str) -> None:
        """Delete the object `key` (deleting an object that is already gone succeeds)."""
        try:
            await self._client.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _error("deleting the message payload from S3 failed", exc, bucket, key) from exc


def _error(what: str, exc: Exception, bucket: str, key: str) -> PayloadError:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            return PayloadError(
                "the message payload object does not exist in S3 (NoSuchKey)", bucket=bucket, key=key, code="NoSuchKey"
            )
        message = exc.response.get("Error", {}).get("Message", "")
        return PayloadError(f"{what}: {code}: {message}", bucket=bucket, key=key, code=code)
    return PayloadError(f"{what}: {exc}", bucket=bucket, key=key, code=type(exc).__name__)
