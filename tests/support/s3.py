"""S3 helpers for the large-payload tests: send as an SQS Extended Client does, list and read payload objects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from service.consumer.handler import Handler
from service.consumer.server import Server
from service.errors import MQError
from service.payloads.payloads import S3Payloads
from service.payloads.pointer import (
    LEGACY_POINTER_CLASS,
    LEGACY_SIZE_ATTRIBUTE,
    POINTER_CLASS,
    SIZE_ATTRIBUTE,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sqs import SQSClient


async def send_offloaded(
    sqs: SQSClient,
    s3: S3Client,
    queue_url: str,
    bucket: str,
    body: str,
    *,
    legacy_attribute: bool = False,
    legacy_class: bool = False,
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
    store: bool = True,
) -> str:
    """Store `body` in S3 (unless `store` is False) and send a pointer to it, in the wire format; returns the key."""
    key = str(uuid.uuid4())
    data = body.encode()
    if store:
        await s3.put_object(Bucket=bucket, Key=key, Body=data)
    kind = LEGACY_POINTER_CLASS if legacy_class else POINTER_CLASS
    size_name = LEGACY_SIZE_ATTRIBUTE if legacy_attribute else SIZE_ATTRIBUTE
    await sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=f'["{kind}",{{"s3BucketName":"{bucket}","s3Key":"{key}"}}]',
        MessageAttributes={
            **{name: dict(value) for name, value in (attributes or {}).items()},  # type: ignore[misc]
            size_name: {"DataType": "Number", "StringValue": str(len(data))},
        },
    )
    return key


async def object_keys(s3: S3Client, bucket: str) -> list[str]:
    """The keys of the objects in a bucket."""
    response = await s3.list_objects_v2(Bucket=bucket)
    return sorted(str(item["Key"]) for item in response.get("Contents", []))


async def read_object(s3: S3Client, bucket: str, key: str) -> str:
    """An object's content as text."""
    response = await s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as stream:
        return (await stream.read()).decode()


@asynccontextmanager
async def consuming(
    url: str, payloads: S3Payloads, handler: Handler, errors: list[MQError] | None = None, **options: object
) -> AsyncIterator[Server]:
    """A Server with the payload resolver and cleanup, inside the payloads' lifecycle."""
    async with (
        payloads,
        Server(
            url,
            payloads.wrap_handler(handler),
            observer=payloads.observers,
            wait_time_seconds=1,
            deletion_interval_s=0.2,
            error_handler=None if errors is None else errors.append,
            **options,  # type: ignore[arg-type]
        ) as server,
    ):
        yield server
