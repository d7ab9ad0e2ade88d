"""What a processor gets from the pipeline: the steps that settle a message, and each message's outcome."""

from __future__ import annotations

import enum
from typing import Protocol

from service.consumer.message import Message


class Outcome(enum.Enum):
    """How the pipeline settled one message, as `Steps.process` reports it to the processor."""

    SUCCEEDED = "succeeded"
    """The handler returned: the message is queued for deletion."""
    FAILED = "failed"
    """The handler raised (a `Retry` too), or its lease was lost: the message is not deleted and comes back."""
    RELEASED = "released"
    """The message was not handled: handed back (while it waited, or cancelled at shutdown)."""

    @property
    def redelivered(self) -> bool:
        """True when SQS will deliver the message again: on a FIFO queue its group's later messages must wait."""
        return self is not Outcome.SUCCEEDED


class Steps(Protocol):
    """The pipeline's steps a processor calls; the pipeline owns every message's state."""

    async def process(self, message: Message) -> Outcome:
        """Run the handling step (handler, then deletion or retry delay) and report the outcome.

        Raises CancelledError only when the processor itself is being cancelled (the message is handed back).
        """
        ...

    def release(self, message: Message, delay_s: int = 0) -> None:
        """Hand a message back unhandled (never run, never deleted): visible again in `delay_s` seconds."""
        ...

    def held_back(self, message: Message) -> None:
        """Report a message over its group's cap (`max_in_flight_per_group`): held in the pod or handed back."""
        ...
