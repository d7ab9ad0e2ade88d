"""FIFO group order under failure: the one rule every ordered processor follows.

When a message of a FIFO group does not succeed, SQS redelivers it first; every later message of its group that
the pod holds must not run before it. A processor hands back the group's messages it queued, and asks
`FailedGroups.blocks` about each message still on its way in: one received before the failure is handed back
too (unhandled, visible at once), so SQS delivers the group again in its order.
"""

from __future__ import annotations

import time

from service.consumer.message import Message


class FailedGroups:
    """The groups with a failed message, and when it failed; forgotten once no earlier arrival can be in transit."""

    def __init__(self) -> None:
        self._failed_at: dict[str, float] = {}

    def failed(self, group: str) -> None:
        """A message of `group` did not succeed, now."""
        self._failed_at[group] = time.monotonic()

    def blocks(self, message: Message) -> bool:
        """True when `message` was received before a failure in its group: it must be handed back."""
        if not self._failed_at:  # the common case: nothing failed, nothing to look up
            return False
        group = message.group_id
        return group is not None and message.received_at <= self._failed_at.get(group, -1.0)

    def caught_up(self) -> None:
        """Every message received so far has reached the processor: no earlier arrival is still in transit."""
        self._failed_at.clear()
