"""Idempotency store fixtures: every store the guard ships, real ones: redis-server on loopback and moto's DynamoDB."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from service.idempotency import Store
from service.idempotency.stores.dynamodb import DynamoDBStore, create_dynamodb_client, create_table
from service.idempotency.stores.redis import RedisStore

STORE_KINDS = ("redis", "dynamodb")


async def make_store(kind: str, redis_url: str) -> Store:
    """A fresh, empty store of `kind`: its own key prefix on the session's Redis, or a new DynamoDB table."""
    if kind == "redis":
        return RedisStore(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}:")
    table = f"t-{uuid.uuid4().hex[:12]}"
    async with create_dynamodb_client() as client:
        await create_table(table, client=client)
    return DynamoDBStore(table)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each store kind: tests that take it run once per kind."""
    return str(request.param)


@pytest.fixture
async def store(store_kind: str, redis_url: str, sqs_endpoint: str) -> AsyncIterator[Store]:
    """A fresh store of each kind, closed after the test."""
    made = await make_store(store_kind, redis_url)
    yield made
    await made.close()
