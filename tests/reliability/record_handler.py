"""A handler for service processes under test: records each handled message's id durably, then returns.

`MQ_HANDLER=tests.reliability.record_handler:handle`. The id is appended to the file named by
`RELIABILITY_RECORD_FILE` and fsync'ed before the handler returns, so a record survives a SIGKILL that
comes right after. A body {"id": ..., "sleep_s": S} makes the handler take S seconds first.
"""

from __future__ import annotations

import asyncio
import json
import os

from service import Message

from .invariants import id_of

_fd: int | None = None


def _record(message_id: str) -> None:
    global _fd  # noqa: PLW0603 - one append-only descriptor for the process's life
    if _fd is None:
        _fd = os.open(os.environ["RELIABILITY_RECORD_FILE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_fd, f"{message_id}\n".encode())
    os.fsync(_fd)


def _sleep_s(body: str) -> float:
    try:
        data = json.loads(body)
    except ValueError:
        return 0.0
    value = data.get("sleep_s", 0.0) if isinstance(data, dict) else 0.0
    return float(value) if isinstance(value, int | float) else 0.0


async def handle(message: Message) -> None:
    """Take the body's `sleep_s`, then record the id (a write and an fsync) and succeed."""
    await asyncio.sleep(_sleep_s(message.body))
    _record(id_of(message.body))


async def accept(message: Message) -> None:
    """Succeed at once, whatever the message (for services fed arbitrary input)."""
