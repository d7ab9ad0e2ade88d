"""RateLimit: a token bucket that paces how many items may be fetched per second."""

from __future__ import annotations

import asyncio
import math
import time

from service.errors import ConfigError

# A waiter re-reads the rate at least this often, so a raised limit (or none) takes effect promptly.
_MAX_NAP_S = 0.25


class RateLimit:
    """At most `per_s` items a second on average, with bursts of at most `burst` (None: no limit).

    The bucket holds at most `burst` tokens, so a budget left unused does not let a later burst exceed that.
    """

    def __init__(self, per_s: float | None, *, burst: int) -> None:
        self._burst = max(1, burst)
        self._per_s: float | None = None
        self._tokens = float(self._burst)
        self._refilled_at = time.monotonic()
        self.generation = 0  # counts changes of the rate: a taker can tell its tokens came from an older rate
        self.per_s = per_s

    @property
    def per_s(self) -> float | None:
        """Items per second, or None for no limit."""
        return self._per_s

    @per_s.setter
    def per_s(self, value: float | None) -> None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError("max_messages_per_s", value, "a positive number of messages per second, or None")
        self._refill()
        self._per_s = value
        self.generation += 1
        if value is not None:
            # A slow rate does not burst more than one second's worth.
            self._tokens = min(self._tokens, self._cap())

    async def take(self, want: int) -> int:
        """Wait until at least one token is there; take up to `want` (all `want` when there is no limit)."""
        while True:
            per_s = self._per_s
            if per_s is None:
                return want
            self._refill()
            if self._tokens >= 1:
                taken = min(want, math.floor(self._tokens))
                self._tokens -= taken
                return taken
            await asyncio.sleep(min(_MAX_NAP_S, (1 - self._tokens) / per_s))

    def give(self, count: int) -> None:
        """Return tokens that were taken but not used (e.g. a receive brought fewer messages)."""
        if self._per_s is not None and count > 0:
            self._tokens = min(self._cap(), self._tokens + count)

    def _cap(self) -> float:
        per_s = self._per_s
        return float(self._burst) if per_s is None else max(1.0, min(float(self._burst), per_s))

    def _refill(self) -> None:
        now = time.monotonic()
        if self._per_s is not None:
            self._tokens = min(self._cap(), self._tokens + (now - self._refilled_at) * self._per_s)
        self._refilled_at = now
