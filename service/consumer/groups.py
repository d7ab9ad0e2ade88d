"""A fair share per message group: at most `max_in_flight_per_group` messages of one group run at once.

The `bounded` and `unbounded` processors put a `GroupCap` between the received messages and their workers
when the cap is set (without it they read the channel directly: no cost per message).

A message over its group's cap neither runs nor takes a worker. The pod holds a few (at most the cap per
group, and only while the messages running and held together stay under the processor's capacity, so the
receive loops keep credits to fetch other groups' messages); the heartbeat keeps them, and one starts as
soon as its group has a free slot, without waiting for a receive. The rest are handed back with a delay:
the time this pod would take to reach them at the group's share (a virtual clock per group, advanced by
the mean handling time divided by the cap for each message handed back), at least 1 s and at most
`hold_back_max_s` (the visibility timeout). Handing back at 0 would be useless on a queue that serves the
oldest message first (the same messages come straight back); the delay lets receives move past a noisy
group's backlog to the other groups' messages, and brings each message back about when its group has room.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from service.aio.channel import Channel
from service.consumer.message import Message
from service.consumer.outcome import Outcome, Steps

# The mean handling time assumed before any message was handled, and the weight of each new measurement.
_INITIAL_MEAN_S = 1.0
_MEAN_WEIGHT = 0.1


def group_key(message: Message) -> str:
    """The group a message counts against: its MessageGroupId, else its `partition_key` attribute, else itself."""
    return message.group_id or message.partition_key or message.message_id


@dataclass
class _Group:
    admitted: int = 0  # passed on to the workers (waiting for one, or running)
    held: deque[Message] = field(default_factory=deque)
    next_turn: float = 0.0  # monotonic time by which the messages handed back so far would have had their turn


class GroupCap:
    """Passes messages on to `ready` while their group is under the cap; holds or hands back the others.

    Workers read `ready` and call `process` (this object's) for each message, which tells the cap when a
    message of a group is done.
    """

    def __init__(self, cap: int, capacity: int, steps: Steps, *, hold_back_max_s: int) -> None:
        self._cap = cap
        self._capacity = capacity
        self._steps = steps
        self._hold_back_max_s = max(1, hold_back_max_s)
        self._groups: dict[str, _Group] = {}
        self._admitted = 0
        self._held = 0
        self._mean_s = _INITIAL_MEAN_S
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
        started = time.monotonic()
        try:
            return await self._steps.process(message)
        finally:
            self._mean_s += _MEAN_WEIGHT * (time.monotonic() - started - self._mean_s)
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
            self._steps.release(message, self._turn(group))

    def _turn(self, group: _Group) -> int:
        now = time.monotonic()
        share_s = self._mean_s / self._cap
        group.next_turn = max(group.next_turn, now + len(group.held) * share_s) + share_s
        return min(self._hold_back_max_s, max(1, math.ceil(group.next_turn - now)))

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
