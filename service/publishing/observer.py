"""The Publisher's hooks: what becomes of each message (tracing and metrics use them), and the offload step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeAlias

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


class Offload(Protocol):
    """An optional step before buffering that moves a large body elsewhere (S3: `service.payloads`)."""

    max_body_bytes: int
    """The largest message (body and attributes) the Publisher accepts with this step."""

    def needed(self, entry: Mapping[str, Any]) -> bool:
        """True when this checked entry's body would be moved."""

    def __call__(self, entry: dict[str, Any]) -> Awaitable[dict[str, Any]]:
        """The entry to buffer instead of `entry` (which it may return as it is); raises PublishError."""
