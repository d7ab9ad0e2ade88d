"""Retry policy and the 12-hour visibility cap."""

from __future__ import annotations

import time

import pytest

from service import MAX_VISIBILITY_TIMEOUT, ConfigError, ExponentialRetryPolicy, Message, Retry
from service.aio.backoff import Backoff


def test_default_policy_doubles_with_each_receive() -> None:
    policy = ExponentialRetryPolicy()
    assert [policy.delay_s(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert policy.delay_s(40) == MAX_VISIBILITY_TIMEOUT


def test_jitter_only_shortens_the_delay() -> None:
    policy = ExponentialRetryPolicy(jitter=0.5)
    delays = {policy.delay_s(6) for _ in range(200)}
    assert all(32 <= d <= 64 for d in delays)
    assert len(delays) > 5


def test_bad_policy_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="jitter"):
        ExponentialRetryPolicy(jitter=2)
    with pytest.raises(ConfigError, match="delay_s"):
        Retry(MAX_VISIBILITY_TIMEOUT + 1)


def test_visibility_cap_counts_from_the_first_receipt() -> None:
    eleven_hours_ago_ms = int((time.time() - 11 * 3600) * 1000)
    raw = {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Attributes": {"ApproximateFirstReceiveTimestamp": str(eleven_hours_ago_ms)},
    }
    message = Message("q", raw, visibility_timeout=30)
    # About an hour is left of the 12, less a safety margin: 43200 s would be refused by SQS.
    assert 3400 <= message.max_visibility_s() <= 3600
    fresh = Message("q", {"MessageId": "m", "ReceiptHandle": "r"}, visibility_timeout=30)
    assert fresh.max_visibility_s() > 43000


def test_backoff_grows_never_drops_to_zero_and_is_capped() -> None:
    backoff = Backoff(base_s=0.5, max_s=8)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (5, 8.0), (50, 8.0)]:
        delays = [backoff.delay_s(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
