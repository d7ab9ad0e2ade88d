"""The drain scenario's handler, run by the service: sleeps until the wall-clock time in its body.

Body: {"until": <epoch seconds>}. When BENCH_DRAIN_LOG names a file, each call appends its `until` on start,
so the harness knows which handlers were in flight and how long each had left when the drain began.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from service import Message

_LOG = os.environ.get("BENCH_DRAIN_LOG")


async def handler(message: Message) -> None:
    """Run until the body's `until`."""
    until = float(json.loads(message.body)["until"])
    if _LOG:
        with open(_LOG, "a") as log:  # noqa: ASYNC230 - one short line, on a local disk
            log.write(f"{until}\n")
    await asyncio.sleep(max(0.0, until - time.time()))
