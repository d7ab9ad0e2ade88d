"""Hooks through which the large-payload support reports what it does (metrics use them)."""

from __future__ import annotations

from service.consumer.message import S3Payload
from service.payloads.pointer import PayloadError


class PayloadObserver:
    """Subclass and override what you need; every hook is a no-op here. Hooks must not block or raise."""

    def offloaded(self, payload: S3Payload) -> None:
        """A body of `payload.size` bytes was stored in S3 and its message will carry a pointer."""

    def fetched(self, payload: S3Payload) -> None:
        """A received message's body was read from S3."""

    def fetch_failed(self, error: PayloadError) -> None:
        """A received message's pointer was malformed or its body could not be read: the message fails."""

    def deleted(self, payload: S3Payload) -> None:
        """The payload object of a deleted message was deleted."""

    def orphaned(self, payload: S3Payload, error: PayloadError | None) -> None:
        """The payload object of a deleted message could not be deleted and stays behind (an orphan)."""
