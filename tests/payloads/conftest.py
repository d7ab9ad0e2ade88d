"""Fixtures: S3 on the same moto server as SQS, and a fresh bucket per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from service.payloads.store import create_s3_client

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


@pytest.fixture
def s3_endpoint(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The moto server that serves SQS serves S3 too: point S3 clients at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", sqs_endpoint)
    return sqs_endpoint


@pytest.fixture
async def s3(s3_endpoint: str) -> AsyncIterator[S3Client]:
    """A real aiobotocore S3 client talking to the moto server over HTTP."""
    async with create_s3_client() as client:
        yield client


@pytest.fixture
async def bucket(s3: S3Client) -> AsyncIterator[str]:
    """A new, empty bucket; emptied and deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    await s3.create_bucket(Bucket=name)
    yield name
    listed = await s3.list_objects_v2(Bucket=name)
    for item in listed.get("Contents", []):
        await s3.delete_object(Bucket=name, Key=item["Key"])
    await s3.delete_bucket(Bucket=name)
