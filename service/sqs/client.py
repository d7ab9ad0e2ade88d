"""The aiobotocore SQS client, created from the standard AWS environment."""

from __future__ import annotations

import os
import re
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

_REGION_IN_URL = re.compile(r"^https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", re.IGNORECASE)
DEFAULT_REGION = "us-east-1"


def region_for(queue_url: str | None = None) -> str:
    """AWS_REGION or AWS_DEFAULT_REGION, else the region in an AWS queue URL, else us-east-1."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    match = _REGION_IN_URL.match(queue_url or "")
    return match.group(1) if match else DEFAULT_REGION


def create_client(
    queue_url: str | None = None, *, max_pool_connections: int = 20, read_timeout_s: float = 60.0
) -> AbstractAsyncContextManager[SQSClient]:
    """An SQS client context manager; endpoint and credentials come from the environment.

    AWS_ENDPOINT_URL_SQS (or AWS_ENDPOINT_URL) points it at a local SQS-compatible server.
    botocore's own retries are left to our retry loops, which back off and count for health.
    """
    config = AioConfig(
        max_pool_connections=max_pool_connections,
        read_timeout=read_timeout_s,
        connect_timeout=10,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    session = get_session()
    return session.create_client("sqs", region_name=region_for(queue_url), config=config)
