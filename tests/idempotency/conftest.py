"""Fixtures: a fresh store of each kind (Redis, DynamoDB) per test."""

from tests.support.idempotency import store, store_kind

__all__ = ["store", "store_kind"]
