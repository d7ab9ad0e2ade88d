"""Hooks through which the pipeline reports what happens to messages (metrics and tracing use them)."""

from __future__ import annotations

from collections.abc import Sequence

from service.consumer.message import Message


class PipelineObserver:
    """Subclass and override what you need; every hook is a no-op here. Hooks must not block or raise."""

    def queue_checked(self) -> None:
        """The queue answered the start-up check (GetQueueAttributes): it exists and the credentials work."""

    def received(self, messages: Sequence[Message], duration_s: float) -> None:
        """A ReceiveMessage call returned `messages` (possibly none) after `duration_s`."""

    def receive_failed(self, error: Exception, duration_s: float) -> None:
        """A ReceiveMessage call failed."""

    def handled(self, message: Message, duration_s: float, error: BaseException | None) -> None:
        """The handler returned (error None) or raised `error`."""

    def retry_scheduled(self, message: Message, delay_s: int) -> None:
        """A failed message will be visible again in `delay_s` seconds."""

    def deleted(self, messages: Sequence[Message]) -> None:
        """SQS deleted these handled messages."""

    def rejected(self, messages: Sequence[Message]) -> None:
        """SQS stored these rejected messages (their handler raised Reject) in the dead-letter queue; deleted next."""

    def released(self, messages: Sequence[Message]) -> None:
        """These messages were handed back to the queue (visible again at once) without being handled."""

    def visibility_extended(self, messages: Sequence[Message], timeout_s: int) -> None:
        """The heartbeat kept these still-running messages invisible for `timeout_s` more seconds."""

    def lease_lost(self, message: Message, reason: str) -> None:
        """The pipeline can no longer hold this message (another consumer may be handling it); once per message."""

    def held_back(self, message: Message) -> None:
        """This message was over its group's cap (`max_in_flight_per_group`): held in the pod or handed back."""
