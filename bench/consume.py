"""The consume worker: drains a preloaded queue one way and reports what it cost (one JSON line on stdout).

    python -m bench.consume --kind server|floor|boto3 --queue-url URL --messages N [--client lean|botocore] [options]

`server` runs the Server (`--batch N`: with a no-op batch handler of up to N messages); `floor` is the cheapest
consumer on a client (a few loops of ReceiveMessage(10) then one DeleteMessageBatch, sharing a client); `--client`
picks the SQS client (aiobotocore's, or the lean one) and `--loop` the event loop; `boto3` is the consumer a user
writes by hand (receive one, delete one). The measured phase runs from the first call until the N-th message is
deleted; the endpoint comes from AWS_ENDPOINT_URL_SQS.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Sequence
from typing import Any

from service import Message, Server, batch
from service.app.cli import event_loop_factory
from service.consumer.pipeline import MAX_RECEIVE_LOOPS
from service.consumer.processors import PROCESSOR_NAMES
from service.consumer.receiver import REQUIRED_ATTRIBUTE_NAMES
from service.consumer.settings import DEFAULT_ATTRIBUTE_NAMES
from service.sqs.client import CLIENT_KINDS, create_client, region_for

from .idempotency import GuardedHandler, guarded
from .measure import ApiCalls, Usage, emit, phase_result
from .tracing import EXPORTS, Instrumentation, TracingUnavailable

POLL_S = 0.01
FLOOR_LOOPS = 4
# The floor asks for what the Server asks for, so the ratio measures the pipeline, not the request.
ATTRIBUTE_NAMES = list(dict.fromkeys([*DEFAULT_ATTRIBUTE_NAMES, *REQUIRED_ATTRIBUTE_NAMES]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker's options."""
    parser = argparse.ArgumentParser(prog="python -m bench.consume")
    parser.add_argument("--kind", choices=("server", "floor", "boto3"), required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--processor", choices=PROCESSOR_NAMES, default="bounded")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--sleep-ms", type=float, default=0.0, help="the handler sleeps this long (0: no-op)")
    parser.add_argument("--wait-time-seconds", type=int, default=20)
    parser.add_argument(
        "--telemetry", choices=("off", "metrics", "traces"), default="off", help="metrics only, or metrics and traces"
    )
    parser.add_argument("--export", choices=EXPORTS, default="lean", help="how traced spans are exported")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the Server has started")
    parser.add_argument("--deadline-s", type=float, default=120.0, help="give up after this long")
    parser.add_argument("--client", choices=CLIENT_KINDS, default="botocore", help="the SQS client")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the event loop")
    parser.add_argument(
        "--batch", type=int, default=0, help="a no-op batch handler gathering up to this many messages (0: none)"
    )
    parser.add_argument("--batch-wait-s", type=float, default=0.1, help="the batch handler's window")
    parser.add_argument(
        "--idempotency", choices=("off", "redis"), default="off", help="the idempotency guard, on a redis-server"
    )
    return parser.parse_args(argv)


def make_handler(sleep_ms: float, batch_messages: int = 0, batch_wait_s: float = 0.0) -> Any:
    """The scenario's handler: a no-op, an asyncio.sleep standing for I/O, or a no-op batch handler."""
    delay_s = sleep_ms / 1000

    async def noop_batch(messages: Sequence[Message]) -> None:
        return None

    if batch_messages:
        return batch(noop_batch, max_messages=batch_messages, max_wait_s=batch_wait_s)

    async def noop(message: Message) -> None:
        return None

    async def io_bound(message: Message) -> None:
        await asyncio.sleep(delay_s)

    return io_bound if delay_s > 0 else noop


async def run_server(args: argparse.Namespace) -> dict[str, Any]:
    """The Server, set up as a deployment would be: long polls, default deletion interval and visibility."""
    telemetry = (
        None if args.telemetry == "off" else Instrumentation(traces=args.telemetry == "traces", export=args.export)
    )
    guard = None if args.idempotency == "off" else GuardedHandler()
    calls = ApiCalls()
    async with (
        guarded(guard),
        create_client(args.queue_url, max_pool_connections=MAX_RECEIVE_LOOPS + 16, kind=args.client) as client,
    ):
        calls.attach(client)
        hooks = None if telemetry is None else telemetry.consumer(args.queue_url, client)
        handler = make_handler(args.sleep_ms, args.batch, args.batch_wait_s)
        if guard is not None:
            handler = guard.wrap(handler)
        server = Server(
            args.queue_url,
            handler,
            client=client,
            concurrency=args.concurrency,
            processor=args.processor,
            wait_time_seconds=args.wait_time_seconds,
            middleware=None if hooks is None else hooks.middleware,
            batch_middleware=None if hooks is None else hooks.batch_middleware,
            observer=hooks,
        )
        began = Usage.now()
        await server.start()
        if args.gc_freeze:
            gc.freeze()
        done = await _until(lambda: server.health.deleted >= args.messages, args.deadline_s)
        ended = Usage.now()
        counted = calls.snapshot()
        summary = await server.shutdown(5.0)
    extra: dict[str, Any] = {"completed": done, "summary": summary.as_dict()}
    extra["handled"] = server.health.snapshot().get("handled")
    if telemetry is not None:
        extra.update(telemetry.finish(), telemetry=telemetry.entry_point, gc_collections=_collections())
    if guard is not None:
        extra.update(idempotency=guard.figures())
    deleted = server.health.deleted if done else summary.deleted
    return phase_result(began, ended, messages=deleted, calls=counted, **extra)


async def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    """A few bare receive(10) -> delete_message_batch loops sharing one client: no pipeline at all."""
    calls = ApiCalls()
    deleted = [0]
    finished = asyncio.Event()

    async def loop(client: Any) -> None:
        while deleted[0] < args.messages:
            response = await client.receive_message(
                QueueUrl=args.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=args.wait_time_seconds,
                AttributeNames=ATTRIBUTE_NAMES,
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if messages:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                await client.delete_message_batch(QueueUrl=args.queue_url, Entries=entries)
                deleted[0] += len(messages)
        finished.set()

    async with create_client(args.queue_url, max_pool_connections=MAX_RECEIVE_LOOPS + 16, kind=args.client) as client:
        calls.attach(client)
        began = Usage.now()
        loops = [asyncio.create_task(loop(client)) for _ in range(FLOOR_LOOPS)]
        done = await _until(finished.is_set, args.deadline_s)
        ended = Usage.now()
        counted = calls.snapshot()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    return phase_result(began, ended, messages=deleted[0], calls=counted, completed=done, loops=FLOOR_LOOPS)


def run_boto3(args: argparse.Namespace) -> dict[str, Any]:
    """One message at a time, as a first hand-written consumer does."""
    import boto3  # noqa: PLC0415 - only this baseline needs it

    client = boto3.client("sqs", region_name=region_for(args.queue_url))
    calls = ApiCalls()
    calls.attach(client)
    deleted = 0
    began = Usage.now()
    give_up_at = time.monotonic() + args.deadline_s
    while deleted < args.messages and time.monotonic() < give_up_at:
        response = client.receive_message(
            QueueUrl=args.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=args.wait_time_seconds
        )
        for message in response.get("Messages", []):
            client.delete_message(QueueUrl=args.queue_url, ReceiptHandle=message["ReceiptHandle"])
            deleted += 1
    ended = Usage.now()
    return phase_result(began, ended, messages=deleted, calls=calls.snapshot(), completed=deleted >= args.messages)


def _collections() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())


async def _until(condition: Any, deadline_s: float) -> bool:
    give_up_at = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > give_up_at:
            return False
        await asyncio.sleep(POLL_S)
    return True


def main(argv: list[str] | None = None) -> None:
    """Run one consume scenario and print its figures."""
    args = parse_args(argv)
    try:
        if args.kind == "boto3":
            result = run_boto3(args)
        else:
            with asyncio.Runner(loop_factory=event_loop_factory(args.loop)) as runner:
                result = runner.run(run_server(args) if args.kind == "server" else run_floor(args))
    except TracingUnavailable as exc:
        result = {"skipped": str(exc)}
    emit(result)


if __name__ == "__main__":
    main()
