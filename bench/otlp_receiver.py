"""An OTLP/HTTP receiver in its own process, so its CPU is never counted as the consumer's: oteltap, counting spans.

    python -m bench.otlp_receiver      # prints {"port": N}; then answers each "count" line on stdin with
                                       # {"spans": total, "process": spans named "process ..."}; exits on EOF

`OtlpReceiver` starts it from the harness on a free 127.0.0.1 port and reads the counts once they settle.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from typing import Any

SETTLE_S = 1.0
SETTLE_TIMEOUT_S = 20.0


class OtlpReceiver:
    """The receiver process, owned by the harness for one scenario run."""

    def __init__(self, python: str = sys.executable) -> None:
        self._process = subprocess.Popen(
            [python, "-m", "bench.otlp_receiver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.endpoint = f"http://127.0.0.1:{self._read()['port']}"

    def counts(self) -> dict[str, int]:
        """The spans received, once no new one has arrived for SETTLE_S (the worker has flushed by then)."""
        last, stable_since, give_up = self._ask(), time.monotonic(), time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() - stable_since < SETTLE_S and time.monotonic() < give_up:
            time.sleep(0.2)
            now = self._ask()
            if now != last:
                last, stable_since = now, time.monotonic()
        return last

    def stop(self) -> None:
        """Close its stdin (it exits on that); terminate it by PID if it does not."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait(5)

    def _ask(self) -> dict[str, int]:
        assert self._process.stdin is not None
        self._process.stdin.write("count\n")
        self._process.stdin.flush()
        return {key: int(value) for key, value in self._read().items()}

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("bench: the OTLP receiver exited")
        result: dict[str, Any] = json.loads(line)
        return result


async def _serve() -> None:
    from oteltap import OtelTapHttpProtobufReceiver, OtelTapHttpProtobufReceiverSettings  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    counts = {"spans": 0, "process": 0}
    async with OtelTapHttpProtobufReceiver(OtelTapHttpProtobufReceiverSettings(http_port=port)) as receiver:

        async def count() -> None:
            async for span in receiver.stream_traces():
                counts["spans"] += 1
                if span.name.startswith("process "):
                    counts["process"] += 1

        counter = asyncio.create_task(count())
        await asyncio.sleep(0)
        print(json.dumps({"port": port}), flush=True)
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            await asyncio.sleep(0.05)  # let the poller hand over what the native receiver holds
            print(json.dumps(counts), flush=True)
        counter.cancel()


if __name__ == "__main__":
    asyncio.run(_serve())
