"""A shared budget on the local SQS server: max_in_flight=8, weights 3:1, two queues with backlogs.

The handlers block until the test lets them finish, so each observation is of a settled state: how many
handlers run on each queue, while each queue has messages waiting for a slot (or, later, has none left).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

from service import Message
from service.app.consumers import QueueSpec
from tests.support.runtime import BASE, running
from tests.support.sqs import QueueFactory, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

# The light queue empties while the heavy one still has a backlog: it gets about 2 slots of each 8 freed, so its
# 16 messages take about 7 rounds, in which the heavy queue handles about 45 of its own.
HEAVY, LIGHT = 100, 16


class Gated:
    """Handlers that run until released; counts what runs on each queue, and the most that ever ran."""

    def __init__(self) -> None:
        self.running: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        self.most_at_once = 0
        self._gates: list[asyncio.Future[None]] = []

    def handler(self, name: str):  # type: ignore[no-untyped-def]
        async def handle(message: Message) -> None:
            self.running[name] += 1
            self.most_at_once = max(self.most_at_once, self.running.total())
            gate = asyncio.get_running_loop().create_future()
            self._gates.append(gate)
            try:
                await gate
            finally:
                self.running[name] -= 1
            self.done[name] += 1

        return handle

    async def finish_one(self) -> None:
        """Let the longest-running handler finish, and wait until it has."""
        target = self.done.total() + 1
        self._gates.pop(0).set_result(None)
        await until(lambda: self.done.total() >= target, what="the released handler finished")

    async def finish_running(self) -> None:
        """Let every running handler finish, and wait until they have."""
        gates, self._gates = self._gates, []
        target = self.done.total() + len(gates)
        for gate in gates:
            gate.set_result(None)
        await until(lambda: self.done.total() >= target, what="the released handlers finished")


async def test_weights_split_the_budget_while_both_have_work_and_a_lone_queue_takes_it_all(
    make_queue: QueueFactory, sqs: SQSClient
) -> None:
    heavy_url, light_url = await make_queue(), await make_queue()
    await send_messages(sqs, heavy_url, [f"h{i}" for i in range(HEAVY)])
    await send_messages(sqs, light_url, [f"l{i}" for i in range(LIGHT)])
    gated = Gated()
    settings = dataclasses.replace(BASE, concurrency=8, visibility_timeout=60)
    specs = [
        QueueSpec("heavy", heavy_url, dataclasses.replace(settings, queue_url=heavy_url), gated.handler("heavy"), 3),
        QueueSpec("light", light_url, dataclasses.replace(settings, queue_url=light_url), gated.handler("light"), 1),
    ]
    async with running(settings, queues=specs, max_in_flight=8) as service:
        budget = service.runtime.budget
        assert budget is not None
        status = (await service.client.get("/status")).json()
        assert status["max_in_flight"] == 8
        assert (status["queues"]["heavy"]["capacity"], status["queues"]["light"]["capacity"]) == (8, 8)

        def busy(name: str) -> bool:
            """The queue has work: messages wait for a slot, or all its 8 workers run."""
            return budget.waiting()[name] > 0 or gated.running[name] == 8

        both: list[tuple[int, int]] = []
        for _ in range(12):  # while both queues have work, handlers finish one at a time, as in a steady stream
            await until(
                lambda: gated.running.total() == 8 and busy("heavy") and busy("light"),
                timeout_s=60,
                what="8 handlers running, both queues busy",
            )
            both.append((gated.running["heavy"], gated.running["light"]))
            await gated.finish_one()
        # Each freed slot goes to the waiting queue furthest below its weighted part, so the split settles at
        # 3:1 of 8; the first observations are how the two backlogs happened to arrive, and a slot may go one
        # way or the other where a queue's next message was still being received as it came free.
        settled = both[6:]
        assert all(5 <= heavy <= 7 for heavy, _ in settled), both
        assert all(1 <= light <= 3 for _, light in settled), both
        assert sum(heavy for heavy, _ in settled) > 2 * sum(light for _, light in settled), both

        while gated.done["light"] < LIGHT:  # the light queue empties
            await until(lambda: gated.running.total() == 8 or gated.done["light"] + gated.running["light"] == LIGHT)
            await gated.finish_running()
        await until(lambda: gated.running.total() == 8, what="8 handlers running on the heavy queue alone")
        assert (gated.running["heavy"], gated.running["light"]) == (8, 0)
        while gated.done.total() < HEAVY + LIGHT:
            await until(
                lambda: gated.running.total() == 8 or gated.done.total() + gated.running.total() == HEAVY + LIGHT
            )
            await gated.finish_running()
    assert gated.most_at_once == 8  # never more than the budget, though each queue may run 8 on its own
