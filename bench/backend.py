"""The SQS backend of a run: fauxqs on a free loopback port, started from bench/fauxqs/server.mjs."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

import boto3

FAUXQS_DIR = Path(__file__).resolve().parent / "fauxqs"
REGION = "us-east-1"
# fauxqs accepts any credentials; these keep real ones from ever being sent to it.
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
START_TIMEOUT_S = 20.0


class Fauxqs:
    """A fauxqs process owned by the harness; queues are created per scenario run and deleted after it."""

    def __init__(self) -> None:
        self.endpoint = ""
        self._process: subprocess.Popen[str] | None = None
        self._client: Any = None
        self._queues = 0

    def start(self) -> None:
        """Start the server and wait until it listens."""
        node = shutil.which("node")
        if node is None:
            raise SystemExit("bench: node is not on PATH (fauxqs@1.9.2 needs Node 20)")
        if not (FAUXQS_DIR / "node_modules" / "fauxqs").is_dir():
            raise SystemExit(f"bench: fauxqs is not installed: run `npm ci` in {FAUXQS_DIR} (or `make bench`)")
        self._process = subprocess.Popen(
            [node, "server.mjs", "0"], cwd=FAUXQS_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        port = int(self._read(START_TIMEOUT_S)["port"])
        self.endpoint = f"http://127.0.0.1:{port}"
        self._client = boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    @property
    def pid(self) -> int:
        """The server's process id (its CPU is read from /proc, never counted as the consumer's)."""
        assert self._process is not None
        return self._process.pid

    def stop(self) -> None:
        """Close its stdin (it exits on that); terminate it by PID if it does not."""
        if self._process is None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait(timeout=5)
        self._process = None

    def environment(self) -> dict[str, str]:
        """The environment for a worker process: this endpoint, test credentials, a region."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MQ_", "OTEL_"))}
        env.update(AWS_ENDPOINT_URL_SQS=self.endpoint, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, **TEST_CREDENTIALS)
        return env

    def queue(self, prefix: str) -> str:
        """A new, empty queue; its URL."""
        self._queues += 1
        name = f"{prefix}-{self._queues}"
        return str(self._client.create_queue(QueueName=name)["QueueUrl"])

    def delete_queue(self, queue_url: str) -> None:
        """Drop a queue and whatever it still holds."""
        self._client.delete_queue(QueueUrl=queue_url)

    def depth(self, queue_url: str) -> dict[str, int]:
        """Visible and in-flight message counts."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self._client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
        return {"visible": int(attributes[names[0]]), "in_flight": int(attributes[names[1]])}

    def fill(self, queue_url: str, count: int, *, keys: int = 0, body_bytes: int = 100) -> None:
        """Enqueue `count` messages in the server itself (no HTTP): `keys` > 0 adds a partition_key attribute."""
        command = {"op": "fill", "queue_url": queue_url, "count": count, "keys": keys, "body_bytes": body_bytes}
        self._send(command)
        answer = self._read(60.0)
        if not answer.get("ok"):
            raise RuntimeError(f"fauxqs fill failed: {answer.get('error')}")

    def send_bodies(self, queue_url: str, bodies: list[str]) -> None:
        """Send these bodies through the API (for scenarios whose bodies carry data)."""
        for start in range(0, len(bodies), 10):
            chunk = bodies[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
            self._client.send_message_batch(QueueUrl=queue_url, Entries=entries)

    def _send(self, command: dict[str, Any]) -> None:
        stdin = self._pipe("stdin")
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()

    def _read(self, timeout_s: float) -> dict[str, Any]:
        stdout = self._pipe("stdout")
        ready, _, _ = select.select([stdout], [], [], timeout_s)
        line = stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"fauxqs did not answer within {timeout_s} s")
        return dict(json.loads(line))

    def _pipe(self, name: str) -> IO[str]:
        assert self._process is not None
        pipe = getattr(self._process, name)
        assert pipe is not None
        return pipe  # type: ignore[no-any-return]
