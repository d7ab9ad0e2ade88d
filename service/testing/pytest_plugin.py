"""The pytest plugin of the test kit (entry point `pytest11`): the fixture `mq_queue`.

`mq_queue(fifo=..., max_receive_count=..., visibility_timeout=...)` makes a LocalQueue on one embedded SQS
server shared by the test session (started at first use, on 127.0.0.1 and a free port); use it with
`async with`. The kit is imported only when the fixture is used, so the plugin costs nothing otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from service.testing.local_queue import LocalQueue


@pytest.fixture(scope="session")
def mq_local_sqs_endpoint() -> Iterator[str]:
    """The endpoint of the embedded SQS server the session's `mq_queue` queues live on."""
    from service.sqs.local import start_moto_server  # noqa: PLC0415 - only when the fixture is used

    server, endpoint = start_moto_server()
    yield endpoint
    server.stop()


@pytest.fixture
def mq_queue(mq_local_sqs_endpoint: str) -> Callable[..., LocalQueue]:
    """Makes LocalQueues on the session's embedded SQS server: `async with mq_queue(max_receive_count=2) as q:`."""
    from service.testing.local_queue import LocalQueue  # noqa: PLC0415 - only when the fixture is used

    def make(**options: Any) -> LocalQueue:
        return LocalQueue(endpoint=mq_local_sqs_endpoint, **options)

    return make
