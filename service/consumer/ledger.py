"""The in-flight ledger: which messages wait for or are in their handler, and the capacity credits they hold."""

from __future__ import annotations

from service.aio.capacity import Capacity
from service.consumer.message import Message


class Ledger:
    """The one owner of in-flight state: credits are reserved before a receive, held by each message it
    brought until that message is settled, and given back exactly once.

    A message is *waiting* from its receipt until its handler starts, then *handling* until it is settled
    (handled, failed or handed back).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._credits = Capacity(capacity)
        self._waiting: set[Message] = set()
        self._handling: set[Message] = set()

    @property
    def in_flight(self) -> int:
        """Messages received and not yet settled."""
        return len(self._waiting) + len(self._handling)

    @property
    def free(self) -> int:
        """Credits neither held by a message nor reserved by a receive in flight."""
        return self._credits.free

    async def reserve(self, want: int) -> int:
        """Wait until `want` credits are free and take them, for a receive of up to that many messages."""
        return await self._credits.take(want)

    def unreserve(self, count: int) -> None:
        """Give back credits reserved and not used (a receive that brought fewer messages, or failed)."""
        self._credits.give(count)

    def admit(self, messages: list[Message], reserved: int) -> None:
        """A receive on `reserved` credits brought `messages`: each keeps one credit; the rest go back."""
        self._waiting.update(messages)
        self._credits.give(reserved - len(messages))

    def start(self, message: Message) -> bool:
        """The message's handler starts; False when it was settled (handed back) while it waited."""
        if message not in self._waiting:
            return False
        self._waiting.remove(message)
        self._handling.add(message)
        return True

    def settle(self, message: Message) -> bool:
        """The message leaves the pipeline and gives its credit back; False when it was already settled."""
        if message in self._waiting:
            self._waiting.remove(message)
        elif message in self._handling:
            self._handling.remove(message)
        else:
            return False
        self._credits.give(1)
        return True

    def is_handling(self, message: Message) -> bool:
        """True while the message is in its handler and not yet settled."""
        return message in self._handling

    def waiting(self) -> list[Message]:
        """The messages not yet started."""
        return list(self._waiting)

    def outstanding(self) -> set[Message]:
        """Every message not yet settled (for the visibility heartbeat and the final hand-back)."""
        return self._waiting | self._handling
