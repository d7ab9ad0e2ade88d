"""The publish worker: sends N messages one way and reports what it cost (one JSON line on stdout).

    python -m bench.publish --kind publisher|floor --queue-url URL --messages N [--client lean|botocore]

`publisher` buffers every message with Publisher.publish_nowait, then awaits all the futures; `floor` is a few
bare SendMessageBatch(10) loops sharing one client. The endpoint comes from AWS_ENDPOINT_URL_SQS.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from service import Publisher
from service.sqs.client import CLIENT_KINDS, create_client

from .measure import ApiCalls, Usage, emit, phase_result

FLOOR_LOOPS = 4
BODY = '{"event": "order-created", "order_id": 123456, "pad": "' + "x" * 40 + '"}'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker's options."""
    parser = argparse.ArgumentParser(prog="python -m bench.publish")
    parser.add_argument("--kind", choices=("publisher", "floor"), required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--deadline-s", type=float, default=120.0)
    parser.add_argument("--client", choices=CLIENT_KINDS, default="botocore", help="the SQS client")
    return parser.parse_args(argv)


async def run_publisher(args: argparse.Namespace) -> dict[str, Any]:
    """All messages buffered at once (max_buffered = N), then every result awaited."""
    calls = ApiCalls()
    async with create_client(args.queue_url, kind=args.client) as client:
        calls.attach(client)
        publisher = Publisher(args.queue_url, client=client, max_buffered=args.messages)
        await publisher.start()
        began = Usage.now()
        futures = [publisher.publish_nowait(BODY) for _ in range(args.messages)]
        results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), args.deadline_s)
        ended = Usage.now()
        counted = calls.snapshot()
        await publisher.shutdown(5.0)
    published = sum(1 for result in results if isinstance(result, str))
    return phase_result(began, ended, messages=published, calls=counted, completed=published == args.messages)


async def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    """Bare SendMessageBatch loops: the least a client can spend to publish."""
    calls = ApiCalls()
    batches = iter(range(0, args.messages, 10))
    sent = [0]

    async def loop(client: Any) -> None:
        for start in batches:  # one shared iterator: each batch is taken by exactly one loop
            size = min(10, args.messages - start)
            entries = [{"Id": str(i), "MessageBody": BODY} for i in range(size)]
            response = await client.send_message_batch(QueueUrl=args.queue_url, Entries=entries)
            sent[0] += len(response.get("Successful", []))

    async with create_client(args.queue_url, kind=args.client) as client:
        calls.attach(client)
        began = Usage.now()
        await asyncio.wait_for(asyncio.gather(*(loop(client) for _ in range(FLOOR_LOOPS))), args.deadline_s)
        ended = Usage.now()
    return phase_result(began, ended, messages=sent[0], calls=calls.snapshot(), completed=sent[0] == args.messages)


def main(argv: list[str] | None = None) -> None:
    """Run one publish scenario and print its figures."""
    args = parse_args(argv)
    emit(asyncio.run(run_publisher(args) if args.kind == "publisher" else run_floor(args)))


if __name__ == "__main__":
    main()
