"""Effectively once: a guard that runs a handler once per key, with its records in Redis or DynamoDB.

`idempotent(handler, store, key=..., expires_s=...)` wraps any Handler (a Router, one route's handler);
`store_from_url("redis://..." | "dynamodb://TABLE")` builds a store. The `redis` package is needed only for
the Redis store (`pip install mq-service[redis]`). docs/idempotency.md explains the records and their states.
"""

from service.idempotency.guard import DEFAULT_EXPIRES_S, Idempotent, InProgress, MissingKey, Ticket, idempotent
from service.idempotency.keys import KEY_NAMES, KeyFunction, key_function
from service.idempotency.observer import IdempotencyObserver
from service.idempotency.store import Claim, Store, StoreError
from service.idempotency.stores import store_from_url

__all__ = [
    "DEFAULT_EXPIRES_S",
    "KEY_NAMES",
    "Claim",
    "IdempotencyObserver",
    "Idempotent",
    "InProgress",
    "KeyFunction",
    "MissingKey",
    "Store",
    "StoreError",
    "Ticket",
    "idempotent",
    "key_function",
    "store_from_url",
]
