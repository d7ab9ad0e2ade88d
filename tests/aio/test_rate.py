"""RateLimit: a token bucket (time is real here; the bounds asserted hold however slow the machine is)."""

from __future__ import annotations

import time

import pytest

from service import ConfigError
from service.aio.rate import RateLimit


async def test_no_limit_takes_everything_at_once() -> None:
    limit = RateLimit(None, burst=10)
    assert [await limit.take(10) for _ in range(100)] == [10] * 100


async def test_a_limit_paces_takes_after_one_burst() -> None:
    limit = RateLimit(20, burst=10)
    began = time.monotonic()
    taken = 0
    while taken < 30:
        taken += await limit.take(10)
    # 10 at once, then 20 at 20 a second: at least a second, on any machine.
    assert time.monotonic() - began >= 0.95
    assert taken == 30


async def test_unused_tokens_go_back_but_never_beyond_one_burst() -> None:
    limit = RateLimit(1, burst=10)
    assert await limit.take(10) == 1  # a slow rate bursts at most one second's worth
    limit.give(5)
    assert await limit.take(10) == 1


def test_a_rate_that_is_not_positive_is_refused() -> None:
    limit = RateLimit(5, burst=10)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="max_messages_per_s"):
            limit.per_s = bad
    assert limit.per_s == 5
