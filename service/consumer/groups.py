"""A fair share per message group: at most `max_in_flight_per_group` messages of one group run at once.

The `bounded` and `unbounded` processors put a `GroupCap` between the received messages and their workers
when the cap is set (without it they read the channel directly: no cost per message).

A message over its group's cap neither runs nor takes a worker. The pod holds a few (at most the cap per
group, and only while the messages running and held together stay under the processor's capacity, so the
receive loops keep credits to fetch other groups' messages); the heartbeat keeps them, and one starts as
soon as its group has a free slot, without waiting for a receive. The rest are handed back invisible for
`hold_back_s` (the visibility timeout: what another consumer's receipt would have cost). Handing back at 0
is useless on a queue that serves the oldest message first (the same messages come straight back, and no
receive reaches the other groups); a delay of the group's turn in this pod (mean handling time / cap per
message ahead) was measured too: the first messages came back before the receives were past the backlog,
and on the local SQS server the quiet groups were reached only after 164 of 240 noisy messages, against
60 with the visibility timeout. Every hand-back counts as a receive toward the queue's maxReceiveCount.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from service.aio.channel import Channel
from service.consumer.message import Message
from service.consumer.outcome import Outcome, Steps


def group_key(message: Message) -> str:
    """The group a message counts against: its MessageGroupId, else its `partition_key` attribute, else itself."""
    return message.group_id or message.partition_key or message.message_id


@dataclass
class _Group:
    admitted: int = 0  # passed on to the workers (waiting for one, or running)
    held: deque[Message] = field(default_factory=deque)


class GroupCap:
    """Passes messages on to `ready` while their group is under the cap; holds or hands back the others.

    Workers read `ready` and call `process` (this object's) for each message, which tells the cap when a
    message of a group is done.
    """

    def __init__(self, cap: int, capacity: int, steps: Steps, *, hold_back_s: int) -> None:
        self._cap = cap
        self._capacity = capacity
        self._steps = steps
        self._hold_back_s = max(1, hold_back_s)
        self._groups: dict[str, _Group] = {}
        self._admitted = 0
        self._held = 0
        self._input_ended = False
        self.ready = Channel[Message]()

    @property
    def held(self) -> int:
        """Messages over their group's cap held in the pod now."""
        return self._held

    async def feed(self, messages: Channel[Message]) -> None:
        """Take every received message until the channel is closed; then close `ready` once nothing is held."""
        try:
            async for message in messages:
                self._admit(message)
        finally:
            self._input_ended = True
            self._close_if_finished()

    async def process(self, message: Message) -> Outcome:
        """The pipeline's step for a message `ready` gave a worker; its group's next held message follows."""
        try:
            return await self._steps.process(message)
        finally:
            self._done(group_key(message))

    def _admit(self, message: Message) -> None:
        key = group_key(message)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        if group.admitted < self._cap:
            group.admitted += 1
            self._admitted += 1
            self.ready.put_nowait(message)
            return
        self._steps.held_back(message)
        if len(group.held) < self._cap and self._admitted + self._held < self._capacity:
            group.held.append(message)
            self._held += 1
        else:
            self._steps.release(message, self._hold_back_s)

    def _done(self, key: str) -> None:
        group = self._groups[key]
        if group.held:
            self._held -= 1
            self.ready.put_nowait(group.held.popleft())  # its group's slot passes to it
            return
        group.admitted -= 1
        self._admitted -= 1
        if group.admitted == 0:
            del self._groups[key]  # its cap is free again: nothing to remember
        self._close_if_finished()

    def _close_if_finished(self) -> None:
        if self._input_ended and self._held == 0 and not self.ready.closed:
            self.ready.close()
