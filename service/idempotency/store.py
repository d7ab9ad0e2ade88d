"""The Store protocol: where the guard keeps its records (one per key: in progress with a lease, or completed)."""

from __future__ import annotations

import enum
from typing import Protocol

from service.errors import MQError


class Claim(enum.Enum):
    """What a claim found: the key was free (now ours), another consumer holds it, or it was done before."""

    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class StoreError(MQError):
    """The idempotency store could not be reached or refused a call; the message is retried, not run unguarded."""


class Store(Protocol):
    """A store of idempotency records. Every write is atomic; an expired record counts as absent.

    `token` is unique per claim, so that renewing or releasing never touches a record another consumer
    claimed after this one's lease ran out. Times are durations in seconds; the store compares expiry
    itself (stores with a TTL of their own, like DynamoDB's, may delete late). Any exception a method
    raises counts as the store failing.
    """

    async def claim(self, key: str, token: str, lease_s: float) -> Claim:
        """Record `key` as in progress under `token` for `lease_s` unless a live record exists; say which."""
        ...

    async def renew(self, key: str, token: str, lease_s: float) -> bool:
        """Extend this claim's lease to `lease_s` from now; False when the record is no longer this claim's."""
        ...

    async def complete(self, key: str, token: str, expires_s: float) -> None:
        """Record `key` as completed, kept for `expires_s`."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Remove the in-progress record of this claim (a record that is no longer this claim's stays)."""
        ...

    async def close(self) -> None:
        """Close the store's connections."""
        ...
