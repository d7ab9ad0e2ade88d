"""The Store contract, run against each store (Redis and DynamoDB): claims, leases, completion, release."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from service.errors import ConfigError
from service.idempotency import Claim, Store, StoreError, store_from_url
from service.idempotency.stores.dynamodb import DynamoDBStore
from service.idempotency.stores.redis import RedisStore


def _token() -> str:
    return uuid.uuid4().hex


async def test_a_free_key_is_claimed_once_and_then_reported_in_progress(store: Store) -> None:
    assert await store.claim("k", _token(), 30) is Claim.CLAIMED
    assert await store.claim("k", _token(), 30) is Claim.IN_PROGRESS


async def test_a_completed_key_is_reported_completed_until_it_expires(store: Store) -> None:
    token = _token()
    assert await store.claim("k", token, 30) is Claim.CLAIMED
    await store.complete("k", token, 2)
    assert await store.claim("k", _token(), 30) is Claim.COMPLETED
    # Both stores compare the expiry themselves (DynamoDB's own TTL may delete days late): claimable once past it.
    await _until_claimed(store, "k", timeout_s=10)


async def test_a_released_claim_frees_the_key_at_once(store: Store) -> None:
    token = _token()
    assert await store.claim("k", token, 30) is Claim.CLAIMED
    await store.release("k", token)
    assert await store.claim("k", _token(), 30) is Claim.CLAIMED


async def test_release_and_renew_leave_another_claims_record_alone(store: Store) -> None:
    mine, theirs = _token(), _token()
    assert await store.claim("k", theirs, 30) is Claim.CLAIMED
    await store.release("k", mine)
    assert await store.renew("k", mine, 30) is False
    assert await store.claim("k", _token(), 30) is Claim.IN_PROGRESS
    assert await store.renew("k", theirs, 30) is True


async def test_an_expired_lease_frees_the_key_and_cannot_be_renewed(store: Store) -> None:
    crashed = _token()
    assert await store.claim("k", crashed, 1) is Claim.CLAIMED
    successor = await _until_claimed(store, "k", timeout_s=10)
    assert await store.renew("k", crashed, 30) is False
    await store.release("k", crashed)  # too late: the successor's claim stays
    assert await store.claim("k", _token(), 30) is Claim.IN_PROGRESS
    assert await store.renew("k", successor, 30) is True


async def test_a_renewed_lease_outlives_its_first_term(store: Store) -> None:
    token = _token()
    assert await store.claim("k", token, 2) is Claim.CLAIMED
    assert await store.renew("k", token, 30) is True
    await asyncio.sleep(3.5)  # past the first term (DynamoDB counts whole seconds): the renewal is what holds it
    assert await store.claim("k", _token(), 30) is Claim.IN_PROGRESS


async def test_of_many_concurrent_claims_of_one_key_exactly_one_wins(store: Store) -> None:
    answers = await asyncio.gather(*(store.claim("contended", _token(), 30) for _ in range(20)))
    assert answers.count(Claim.CLAIMED) == 1
    assert answers.count(Claim.IN_PROGRESS) == 19


async def test_keys_are_independent(store: Store) -> None:
    token = _token()
    assert await store.claim("a", token, 30) is Claim.CLAIMED
    await store.complete("a", token, 60)
    assert await store.claim("b", _token(), 30) is Claim.CLAIMED


async def test_an_unreachable_redis_raises_store_error() -> None:
    from tests.support.redis import free_port  # noqa: PLC0415

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=1)
    with pytest.raises(StoreError, match="Redis"):
        await store.claim("k", _token(), 30)
    await store.close()


async def test_a_missing_dynamodb_table_raises_store_error(sqs_endpoint: str) -> None:
    store = DynamoDBStore(f"missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(StoreError, match="ResourceNotFoundException"):
        await store.claim("k", _token(), 30)
    await store.close()


def test_store_from_url_builds_each_store_and_refuses_others(redis_url: str) -> None:
    assert isinstance(store_from_url(redis_url), RedisStore)
    dynamodb = store_from_url("dynamodb://orders-idempotency")
    assert isinstance(dynamodb, DynamoDBStore)
    assert dynamodb.table == "orders-idempotency"
    for bad in ("postgres://x", "redis://", "dynamodb://", "dynamodb://a b", "orders"):
        with pytest.raises(ConfigError, match=r"redis://HOST:PORT\[/DB\]|dynamodb://TABLE"):
            store_from_url(bad)


async def _until_claimed(store: Store, key: str, *, timeout_s: float) -> str:
    """Claim `key` as soon as its record has expired; the winning token."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        token = _token()
        if await store.claim(key, token, 30) is Claim.CLAIMED:
            return token
        assert asyncio.get_running_loop().time() < deadline, f"{key} still held after {timeout_s} s"
        await asyncio.sleep(0.2)
