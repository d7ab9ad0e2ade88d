"""Huge bodies to every route that takes one, against `python -m service run`: refused before they fill the memory.

Each body is 300 MB of NUL bytes streamed in chunks (no Content-Length, as `curl -T -` sends it). The service's
peak resident memory (VmHWM in /proc) may grow by at most 50 MB over the whole run: the largest limit here is
/publish's 10 MiB, and the reader refuses a body the moment it would pass its route's limit.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.support.process import env_for, service_process
from tests.support.sqs import QueueFactory

BODY_BYTES = 300 * 1_000_000
CHUNK = b"\0" * 1_048_576
MAX_GROWTH_BYTES = 50 * 1_048_576
ROUTES = [("POST", "/publish"), ("POST", "/pause"), ("POST", "/resume"), ("PUT", "/limits"), ("POST", "/dlq/redrive")]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def peak_resident_bytes(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


async def stream_body(admin_url: str, method: str, path: str) -> tuple[int, dict[str, object], int]:
    """Stream BODY_BYTES chunked until the service answers; (status, JSON body, bytes sent)."""
    host, port = admin_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    writer.write(head.encode())
    answer = asyncio.create_task(read_response(reader))
    sent = 0
    try:
        while sent < BODY_BYTES and not answer.done():
            writer.write(b"%x\r\n%b\r\n" % (len(CHUNK), CHUNK))
            sent += len(CHUNK)
            await asyncio.wait([answer, asyncio.ensure_future(writer.drain())], return_when=asyncio.FIRST_COMPLETED)
        raw = await asyncio.wait_for(answer, 60)
    except ConnectionError:  # the service closed the connection after answering: the answer is read below
        raw = await asyncio.wait_for(answer, 60)
    finally:
        writer.transport.abort()
    status, body = raw
    return status, json.loads(body), sent


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of an HTTP/1.1 answer with a Content-Length."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in head[1:] if line)
    return int(head[0].split()[1]), await reader.readexactly(int(headers["content-length"]))


@pytest.mark.timeout(300)
async def test_huge_bodies_are_refused_without_raising_the_peak_memory(
    tmp_path: Path, make_queue: QueueFactory
) -> None:
    url = await make_queue(max_receive_count=2)
    async with service_process(env_for(url), tmp_path / "service.log") as service:
        pid = service.process.pid
        await service.status()  # the first request's imports and allocations happen before the baseline
        before = peak_resident_bytes(pid)
        for method, path in ROUTES:
            status, answer, sent = await stream_body(service.admin_url, method, path)
            assert status == 413, (path, answer)
            assert "larger than" in str(answer["error"])
            assert sent < BODY_BYTES, f"{path} read the whole body"
        growth = peak_resident_bytes(pid) - before
        after = await service.status()
        assert service.process.returncode is None
    assert growth < MAX_GROWTH_BYTES, f"peak memory grew by {growth / 1_048_576:.0f} MB"
    assert (after["paused"], after["max_messages_per_s"], after["publisher"]["published"]) == (False, None, 0)
