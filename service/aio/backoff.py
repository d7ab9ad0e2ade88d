"""Exponential backoff with jitter, shared by every retry loop."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry number `attempt` (0-based): base_s * 2**attempt, capped, with "equal jitter".

    Half the delay is fixed and half is random, so retries spread out without ever dropping to zero
    (a zero delay would turn an outage into a hot loop).
    """

    base_s: float = 0.1
    max_s: float = 20.0

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt`."""
        ceiling: float = min(self.max_s, self.base_s * 2 ** min(attempt, 32))
        return ceiling / 2 + random.uniform(0, ceiling / 2)
