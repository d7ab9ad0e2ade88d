"""A fault-injecting HTTP reverse proxy on loopback, between an SQS client and an SQS-compatible server.

The client's endpoint (`AWS_ENDPOINT_URL_SQS`) is the proxy's `url`. Every request is identified by its
SQS operation (the `X-Amz-Target` header of the JSON protocol: `AmazonSQS.ReceiveMessage` ->
`ReceiveMessage`) and counted; rules set at runtime decide, per operation and for a number of calls or a
time window, whether a call is delayed, dropped, reset, answered with a 5xx or throttled, or forwarded
and then has its answer lost (the call took effect, the client never learns it), held back for
`latency_s` (the call took effect, the client learns it late) or corrupted (`corrupt_body`: every message
body in the answer loses its last character, so its MD5 digest no longer matches). Each call's log entry
also keeps the access key id it was signed with.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import socket
import struct
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

import aiohttp

Fault = Literal[
    "latency",
    "drop",
    "reset",
    "error500",
    "error503",
    "throttle",
    "refuse_credentials",
    "lose_response",
    "slow_response",
    "corrupt_body",
]

_TARGET_PREFIX = "AmazonSQS."
_MAX_HEAD_BYTES = 64 * 1024
_CLOSE_TIMEOUT_S = 2.0
# The body is passed through as it is (no decompression), so Content-Encoding stays.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"})
# Error answers as SQS's JSON protocol gives them. botocore reads the code from `__type` (after the `#`), or
# from the `x-amzn-query-error` header when present; ThrottlingException is in its throttling-code list.
_ERRORS: dict[str, tuple[int, str, str, str]] = {
    "error500": (500, "Internal Server Error", "InternalError", "Receiver"),
    "error503": (503, "Service Unavailable", "ServiceUnavailable", "Receiver"),
    "throttle": (400, "Bad Request", "ThrottlingException", "Sender"),
    "refuse_credentials": (403, "Forbidden", "InvalidClientTokenId", "Sender"),
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass
class Rule:
    """One fault: for `operations` (None: all), while `calls` remain (None: unlimited) and before `until`."""

    fault: Fault
    operations: frozenset[str] | None = None
    calls: int | None = None
    until: float | None = None
    latency_s: float = 0.0
    window_s: float | None = None
    injected: int = 0

    def matches(self, operation: str, now: float) -> bool:
        """True when this rule applies to a call of `operation` now."""
        if self.operations is not None and operation not in self.operations:
            return False
        if self.calls is not None and self.injected >= self.calls:
            return False
        if self.window_s is not None and self.until is None:
            self.until = now + self.window_s  # the window opens with the first call it affects
        return self.until is None or now < self.until

    @property
    def spent(self) -> bool:
        """True once the rule can match no more calls."""
        expired = self.until is not None and time.monotonic() >= self.until
        return expired or (self.calls is not None and self.injected >= self.calls)


@dataclass(frozen=True)
class Call:
    """One request the proxy saw: when (monotonic), which operation, what it did with it, and a digest of the body
    (a batch call retried with the same entries has the same digest)."""

    at: float
    operation: str
    outcome: str
    digest: str
    access_key: str = ""


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool

    @property
    def access_key(self) -> str:
        for name, value in self.headers:
            if name.lower() == "authorization":
                found = _CREDENTIAL.search(value)
                return found.group(1) if found else ""
        return ""

    @property
    def operation(self) -> str:
        for name, value in self.headers:
            if name.lower() == "x-amz-target":
                return value.removeprefix(_TARGET_PREFIX)
        return "unknown"


@dataclass
class FaultProxy:
    """Forwards HTTP/1.1 requests from 127.0.0.1:<port> to `upstream`, injecting faults by rule."""

    upstream: str
    # Calls seen, calls with a fault injected, and calls the upstream server answered, by operation.
    calls: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    log: list[Call] = field(default_factory=list)
    _rules: list[Rule] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _session: aiohttp.ClientSession | None = None
    _connections: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    url: str = ""

    async def start(self) -> None:
        """Listen on a free loopback port; `url` is set once this returns."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200), auto_decompress=False, skip_auto_headers=("User-Agent",)
        )
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=_MAX_HEAD_BYTES)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        """Stop listening, end every open connection and the upstream session."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._session is not None:
            await self._session.close()  # ends the calls still waiting for the upstream server
        if self._connections:
            _, stuck = await asyncio.wait(self._connections, timeout=_CLOSE_TIMEOUT_S)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def add(
        self,
        fault: Fault,
        *,
        operations: Iterable[str] | None = None,
        calls: int | None = None,
        duration_s: float | None = None,
        window_s: float | None = None,
        latency_s: float = 0.0,
    ) -> Rule:
        """Inject `fault` into the next `calls` calls of `operations`, or into all of them for `duration_s` from now,
        or for `window_s` from the first call it affects. Rules apply in the order they were added."""
        rule = Rule(
            fault,
            operations=None if operations is None else frozenset(operations),
            calls=calls,
            until=None if duration_s is None else time.monotonic() + duration_s,
            latency_s=latency_s,
            window_s=window_s,
        )
        self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule: from now on every call is forwarded untouched."""
        self._rules.clear()

    def attempts(self, operation: str) -> dict[str, list[Call]]:
        """Calls of `operation` grouped by request body: the attempts of each distinct request, in order."""
        groups: dict[str, list[Call]] = {}
        for call in self.log:
            if call.operation == operation:
                groups.setdefault(call.digest, []).append(call)
        return groups

    def calls_between(self, operation: str, start: float, end: float) -> int:
        """How many calls of `operation` arrived in the monotonic time window [start, end]."""
        return sum(1 for call in self.log if call.operation == operation and start <= call.at <= end)

    def _pick(self, operation: str) -> tuple[float, Rule | None]:
        """Latency to add (every matching latency rule) and the first other matching rule."""
        now = time.monotonic()
        delay_s = 0.0
        chosen: Rule | None = None
        for rule in self._rules:
            if not rule.matches(operation, now):
                continue
            if rule.fault == "latency":
                rule.injected += 1
                delay_s += rule.latency_s
            elif chosen is None:
                rule.injected += 1
                chosen = rule
        return delay_s, chosen

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass  # the client went away or sent something this proxy does not speak
        except asyncio.CancelledError:
            # Only `close` cancels, and only a stuck connection. Ending normally keeps Python 3.11's stream
            # callback from logging the cancellation as an unhandled error.
            pass
        finally:
            self._writers.discard(writer)
            self._connections.discard(task)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to be closed."""
        request = await _read_request(reader)
        if request is None:
            return False
        operation = request.operation
        self.calls[operation] += 1
        delay_s, rule = self._pick(operation)
        if delay_s:
            await asyncio.sleep(delay_s)
        outcome = ("latency+" if delay_s else "") + ("forwarded" if rule is None else rule.fault)
        digest = hashlib.sha256(request.body).hexdigest()[:16]
        self.log.append(Call(time.monotonic(), operation, outcome, digest, request.access_key))
        if rule is not None or delay_s:
            self.faults[operation] += 1
        if rule is not None and rule.fault in ("drop", "reset"):
            _close(writer, reset=rule.fault == "reset")
            return False
        if rule is not None and rule.fault in _ERRORS:
            writer.write(_error_response(rule.fault))
        else:
            response = await self._forward(request)
            self.answered[operation] += 1
            if rule is not None and rule.fault == "lose_response":
                _close(writer, reset=True)
                return False
            if rule is not None and rule.fault == "slow_response":
                await asyncio.sleep(rule.latency_s)
            if rule is not None and rule.fault == "corrupt_body":
                response = _corrupt(response)
            writer.write(response)
        await writer.drain()
        return request.keep_alive

    async def _forward(self, request: _Request) -> bytes:
        assert self._session is not None
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
        try:
            async with self._session.request(
                request.method, self.upstream + request.target, headers=headers, data=request.body
            ) as upstream:
                body = await upstream.read()
                head = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP]
                return _response(upstream.status, upstream.reason or "", head, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            body = json.dumps({"__type": "ProxyUpstreamError", "message": repr(exc)}).encode()
            return _response(502, "Bad Gateway", [("Content-Type", "application/x-amz-json-1.0")], body)


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None  # the client closed an idle keep-alive connection
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    values = {name.lower(): value for name, value in headers}
    if "chunked" in values.get("transfer-encoding", "").lower():
        raise ValueError("chunked request bodies are not supported")
    body = await reader.readexactly(int(values.get("content-length", "0")))
    keep_alive = values.get("connection", "").lower() != "close" and version == "HTTP/1.1"
    return _Request(method, target, headers, body, keep_alive)


def _response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _error_response(fault: str) -> bytes:
    status, reason, code, kind = _ERRORS[fault]
    body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": f"injected by the fault proxy ({fault})"})
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", "fault-proxy"),
        ("x-amzn-query-error", f"{code};{kind}"),
    ]
    return _response(status, reason, headers, body.encode())


def _corrupt(response: bytes) -> bytes:
    """The same answer with every message body one character shorter (and Content-Length to match)."""
    head, _, body = response.partition(b"\r\n\r\n")
    parsed = json.loads(body)
    for message in parsed.get("Messages", []):
        message["Body"] = message["Body"][:-1]
    corrupted = json.dumps(parsed).encode()
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length:")]
    lines.append(b"Content-Length: %d" % len(corrupted))
    return b"\r\n".join(lines) + b"\r\n\r\n" + corrupted


def _close(writer: asyncio.StreamWriter, *, reset: bool) -> None:
    """Close without answering; `reset` sends a TCP RST (linger 0) instead of an orderly FIN."""
    if reset:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()
