"""Retry policies: how long a failed message stays invisible before it is received again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from service.errors import MAX_VISIBILITY_TIMEOUT, ConfigError, Retry


class RetryPolicy(Protocol):
    """Chooses the visibility delay of a failed message from its receive count (1 on first receipt)."""

    def delay_s(self, receive_count: int) -> int | None:
        """Seconds until the message is visible again; None leaves its visibility timeout as it is."""
        ...


@dataclass(frozen=True, slots=True)
class ExponentialRetryPolicy:
    """base_s * 2**receive_count seconds, at most max_delay_s, optionally less a random fraction `jitter`.

    The Server further caps every visibility change so the message never outlives SQS's 12-hour limit.
    """

    base_s: float = 1.0
    max_delay_s: int = MAX_VISIBILITY_TIMEOUT
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError("jitter", self.jitter, "a fraction from 0.0 to 1.0")
        if self.base_s < 0:
            raise ConfigError("base_s", self.base_s, "a number of seconds >= 0")
        if not 0 <= self.max_delay_s <= MAX_VISIBILITY_TIMEOUT:
            raise ConfigError("max_delay_s", self.max_delay_s, f"an integer from 0 to {MAX_VISIBILITY_TIMEOUT}")

    def delay_s(self, receive_count: int) -> int:
        """Seconds until the message is visible again."""
        delay: float = min(float(self.max_delay_s), self.base_s * 2 ** min(max(receive_count, 0), 16))
        if self.jitter:
            delay -= random.uniform(0, self.jitter * delay)
        return round(delay)


DEFAULT_RETRY_POLICY = ExponentialRetryPolicy()

__all__ = ["DEFAULT_RETRY_POLICY", "MAX_VISIBILITY_TIMEOUT", "ExponentialRetryPolicy", "Retry", "RetryPolicy"]
