"""Hooks through which the Publisher reports what becomes of each message (tracing and metrics use them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from service.errors import PublishError
from service.sqs.batch import BatchResult

OutputHandler: TypeAlias = Callable[[list[dict[str, Any]], BatchResult], None]
"""Called with each batch's request entries (Id included) and its outcome, keyed by those Ids."""


class PublishObserver:
    """Per-message hooks (tracing uses them); every hook is a no-op here. Hooks must not block."""

    def enqueued(self, entry: dict[str, Any]) -> None:
        """`publish` accepted `entry`; called in the caller's context. May add message attributes (at most 10)."""

    def published(self, entry: dict[str, Any], message_id: str) -> None:
        """SQS stored the message as `message_id`."""

    def failed(self, entry: dict[str, Any], error: PublishError) -> None:
        """The message was not published."""
