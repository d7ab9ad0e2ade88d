"""Hooks through which the idempotency guard reports what it decides (metrics and the message's span use them)."""

from __future__ import annotations

from service.consumer.message import Message


class IdempotencyObserver:
    """Subclass and override what you need; every hook is a no-op here. Hooks must not block or raise.

    The hooks run inside the handling of `message`, so in its context (its span is the current span).
    """

    def completed(self, message: Message, key: str) -> None:
        """The handler ran for `key` and the key is now recorded as completed."""

    def skipped(self, message: Message, key: str) -> None:
        """`key` was completed before: the handler was skipped and the message counts as handled."""

    def in_progress(self, message: Message, key: str, delay_s: int) -> None:
        """Another consumer holds `key`: the message is retried in `delay_s` seconds."""

    def store_failed(self, message: Message, key: str, error: BaseException) -> None:
        """A store call failed; the message is retried (or, with fail_open, handled unguarded)."""

    def unguarded(self, message: Message, reason: str) -> None:
        """The handler ran without a record: the message had no key, or the store failed with fail_open."""
