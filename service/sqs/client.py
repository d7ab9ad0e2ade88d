"""SQS clients, created from the standard AWS environment: the lean client (default) or aiobotocore's."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, cast

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from service.errors import ConfigError
from service.sqs.lean import open_lean_client

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

ClientKind = Literal["lean", "botocore"]
CLIENT_KINDS: tuple[ClientKind, ...] = ("lean", "botocore")
DEFAULT_CLIENT_KIND: ClientKind = "lean"

_REGION_IN_URL = re.compile(r"^https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", re.IGNORECASE)
DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT_S = 10.0


def region_for(queue_url: str | None = None) -> str:
    """AWS_REGION or AWS_DEFAULT_REGION, else the region in an AWS queue URL, else us-east-1."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    match = _REGION_IN_URL.match(queue_url or "")
    return match.group(1) if match else DEFAULT_REGION


def create_client(
    queue_url: str | None = None,
    *,
    max_pool_connections: int = 20,
    read_timeout_s: float = 60.0,
    kind: ClientKind = DEFAULT_CLIENT_KIND,
    credentials: Any = None,
) -> AbstractAsyncContextManager[SQSClient]:
    """An SQS client context manager; endpoint and credentials come from the environment.

    `kind` "lean" (the default) is the LeanSQSClient for the per-message operations (ReceiveMessage,
    DeleteMessageBatch, ChangeMessageVisibility(Batch), SendMessageBatch, GetQueueAttributes); "botocore"
    is aiobotocore's full client. AWS_ENDPOINT_URL_SQS (or AWS_ENDPOINT_URL) points either at a local
    SQS-compatible server. botocore's own retries are left to our retry loops, which back off and count for
    health. `credentials` (botocore credentials) replaces the default chain for the lean client.
    """
    if kind not in CLIENT_KINDS:
        raise ConfigError("kind", kind, f"one of {', '.join(CLIENT_KINDS)}")
    config = AioConfig(
        max_pool_connections=max_pool_connections,
        read_timeout=read_timeout_s,
        connect_timeout=CONNECT_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    if kind == "lean":
        return _lean_client(queue_url, config, credentials, max_pool_connections, read_timeout_s)
    return get_session().create_client("sqs", region_name=region_for(queue_url), config=config)


@asynccontextmanager
async def _lean_client(
    queue_url: str | None, config: AioConfig, credentials: Any, max_pool_connections: int, read_timeout_s: float
) -> AsyncIterator[SQSClient]:
    client = await open_lean_client(
        queue_url,
        region=region_for(queue_url),
        config=config,
        session=get_session(),
        credentials=credentials,
        max_pool_connections=max_pool_connections,
        read_timeout_s=read_timeout_s,
        connect_timeout_s=CONNECT_TIMEOUT_S,
    )
    async with client:
        # It has the per-message coroutine methods of SQSClient, with the same arguments and answers.
        yield cast("SQSClient", client)
