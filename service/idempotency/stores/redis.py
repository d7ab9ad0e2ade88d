"""RedisStore: idempotency records in Redis, one string per key, each write one atomic script."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.idempotency.store import Claim, StoreError

DEFAULT_PREFIX = "mq-idempotency:"
DEFAULT_TIMEOUT_S = 5.0
_IN_PROGRESS = "in_progress:"
_COMPLETED = "completed"

# Claim: SET NX with the lease in milliseconds; when a record is there, answer it (one round trip, atomic).
_CLAIM = """
local found = redis.call('GET', KEYS[1])
if found then return found end
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return false
"""
# Renew and release act only on this claim's own record (compare, then act, atomically).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStore:
    """Records as Redis strings `prefix + key`: `in_progress:<token>` with the lease as its expiry, or `completed`.

    Redis expires records itself (PX), on time. Give a `client` (a `redis.asyncio.Redis`, which this store
    then does not close) or a `url` (`redis://[:password@]host:port/db`, `rediss://` for TLS).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        client: aioredis.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._owned = client is None
        self.client: aioredis.Redis = client or aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._claim = self.client.register_script(_CLAIM)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)

    async def claim(self, key: str, token: str, lease_s: float) -> Claim:
        """Record `key` as in progress unless a live record exists."""
        found = await self._call(self._claim, key, _IN_PROGRESS + token, _ms(lease_s))
        if found is None:
            return Claim.CLAIMED
        return Claim.COMPLETED if _text(found) == _COMPLETED else Claim.IN_PROGRESS

    async def renew(self, key: str, token: str, lease_s: float) -> bool:
        """Extend this claim's lease; False when the record is no longer this claim's."""
        return bool(await self._call(self._renew, key, _IN_PROGRESS + token, _ms(lease_s)))

    async def complete(self, key: str, token: str, expires_s: float) -> None:
        """Record `key` as completed for `expires_s`."""
        try:
            await self.client.set(self.prefix + key, _COMPLETED, px=_ms(expires_s))
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis: {exc}") from exc

    async def release(self, key: str, token: str) -> None:
        """Remove this claim's in-progress record."""
        await self._call(self._release, key, _IN_PROGRESS + token)

    async def close(self) -> None:
        """Close the connections (unless the client was given)."""
        if self._owned:
            await self.client.aclose()

    async def _call(self, script: Any, key: str, *args: str | int) -> Any:
        try:
            return await script(keys=[self.prefix + key], args=list(args))
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis: {exc}") from exc


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
