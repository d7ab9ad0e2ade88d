"""The guard around a batch handler: each message's key claimed first, the batch run over the claimed ones."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from service.consumer.batching import BatchHandler, Outcome
from service.consumer.message import Message
from service.idempotency.lease import Lease

if TYPE_CHECKING:
    from service.idempotency.guard import Idempotent, Ticket


def guard_batches(guard: Idempotent, handler: BatchHandler) -> BatchHandler:
    """`handler` under `guard`: completed keys are skipped (they count as handled); a key held by another
    consumer, or a store that failed, fails its message alone; the batch function gets the messages whose keys
    were claimed, under their leases, and each outcome completes or releases its claim."""

    async def guarded(messages: Sequence[Message]) -> dict[Message, Exception]:
        failed, tickets = await _claim(guard, messages)
        if not tickets:
            return failed
        claimed = list(tickets)
        try:
            outcomes = await _run(guard, handler, claimed, tickets)
        except BaseException:
            for message, ticket in tickets.items():
                await _settle(guard, message, ticket, None, succeeded=False)
            raise
        for message, outcome in zip(claimed, outcomes, strict=True):
            await _settle(guard, message, tickets[message], outcome, succeeded=outcome is None)
            if outcome is not None:
                failed[message] = outcome
        return failed

    return BatchHandler(
        guarded, max_messages=handler.max_messages, max_wait_s=handler.max_wait_s, name=handler.__name__
    )


async def _claim(
    guard: Idempotent, messages: Sequence[Message]
) -> tuple[dict[Message, Exception], dict[Message, Ticket]]:
    failed: dict[Message, Exception] = {}
    tickets: dict[Message, Ticket] = {}
    for message in messages:
        try:
            ticket = await guard.claim(message)
        except Exception as exc:
            failed[message] = exc
            continue
        if ticket is not None:
            tickets[message] = ticket
    return failed, tickets


async def _run(
    guard: Idempotent, handler: BatchHandler, claimed: list[Message], tickets: dict[Message, Ticket]
) -> list[Outcome]:
    async with AsyncExitStack() as leases:
        for ticket in tickets.values():
            if ticket.key:  # "" is a message run unguarded (no key, or fail_open)
                await leases.enter_async_context(Lease(guard.store, ticket.key, ticket.token, ticket.lease_s))
        return await handler.run(claimed)


async def _settle(guard: Idempotent, message: Message, ticket: Ticket, outcome: Outcome, *, succeeded: bool) -> None:
    if not ticket.key:
        return
    if succeeded:
        await guard.complete(message, ticket)
    else:
        await guard.release(message, ticket)
