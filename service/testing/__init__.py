"""A test kit for handler authors: real queue behaviour (visibility, retries, dead letters, FIFO) on a local server.

`LocalQueue` runs a queue and its dead-letter queue on the embedded SQS server (the `local` extra); the pytest
plugin (registered as an entry point) provides the fixture `mq_queue`. Nothing in `service` imports this package.
"""

from service.testing.bodies import eventbridge_body, sns_body
from service.testing.local_queue import LocalQueue
from service.testing.result import DeadLetter, Delivery, RunResult

__all__ = ["DeadLetter", "Delivery", "LocalQueue", "RunResult", "eventbridge_body", "sns_body"]
