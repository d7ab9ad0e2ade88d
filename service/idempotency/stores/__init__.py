"""The stores the service can build from a URL; each store's module is imported only when used."""

from __future__ import annotations

from service.errors import ConfigError
from service.idempotency.store import Store

ALLOWED_URLS = "redis://HOST:PORT[/DB] (rediss:// for TLS) or dynamodb://TABLE"


def check_store_url(name: str, url: str) -> str:
    """`url` when it names a store `store_from_url` can build; raises ConfigError naming the setting `name`."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("redis", "rediss", "dynamodb") or not rest.strip("/"):
        raise ConfigError(name, url, ALLOWED_URLS)
    if scheme == "dynamodb" and not _table_name_ok(rest):
        raise ConfigError(name, url, "dynamodb://TABLE with a table name of 3-255 letters, digits, _ - .")
    return url


def store_from_url(url: str) -> Store:
    """A RedisStore for `redis://...` or `rediss://...`, a DynamoDBStore for `dynamodb://TABLE`."""
    check_store_url("store", url)
    if url.startswith("dynamodb://"):
        from service.idempotency.stores.dynamodb import DynamoDBStore  # noqa: PLC0415 - aiobotocore's types

        return DynamoDBStore(url.removeprefix("dynamodb://"))
    try:
        from service.idempotency.stores.redis import RedisStore  # noqa: PLC0415 - `redis` is an optional extra
    except ImportError as exc:
        raise ConfigError("store", url, "a dynamodb:// store, or install mq-service[redis] for Redis") from exc
    return RedisStore(url)


def redacted(url: str) -> str:
    """`url` with any password replaced by `***`, for logs and /status."""
    scheme, found, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not found or not at:
        return url
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{location}" if colon else f"{scheme}://***@{location}"


def _table_name_ok(table: str) -> bool:
    return 3 <= len(table) <= 255 and all(c.isalnum() or c in "_-." for c in table)
