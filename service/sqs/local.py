"""An embedded SQS- and S3-compatible server (moto) on loopback, for running the service with no queue configured."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiobotocore.session import get_session

from service.errors import ConfigError
from service.sqs.client import create_client
from service.sqs.urls import is_fifo

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

QUEUE_NAME = "mq-service"
DEAD_LETTER_QUEUE_NAME = "mq-service-dlq"
MAX_RECEIVE_COUNT = 3
BUCKET_NAME = "mq-service-payloads"
REGION = "us-east-1"
# moto accepts any credentials; these make sure no real AWS credentials are sent to the local server.
_TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
_ENV_KEYS = (
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
)

_log = logging.getLogger("service.local_sqs")
# The embedded server's own loggers (its HTTP server, moto): what they report is the local server's business.
_SERVER_LOGGERS = ("werkzeug", "moto", "flask", "flask_cors")
_server_log = logging.getLogger("service.local_sqs.server")


class _AtDebug(logging.Handler):
    """Re-logs a record of the embedded server's loggers on `service.local_sqs.server` at DEBUG, traceback kept.

    A request the local server fails (an action it lacks, a race of its own) is answered with an error the
    service handles (and logs where it matters, e.g. one WARNING when it falls back); a traceback at ERROR in
    the service's log would only alarm.
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Log it again, at DEBUG."""
        _server_log.debug("%s: %s", record.name, record.getMessage(), exc_info=record.exc_info)


def _quieten_server_loggers() -> None:
    handler = _AtDebug()
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)  # their per-request lines stay off; their errors come down to DEBUG
        logger.propagate = False
        if not any(isinstance(existing, _AtDebug) for existing in logger.handlers):
            logger.addHandler(handler)


def _dead_letter_name(name: str) -> str:
    """`orders` -> `orders-dlq`; `orders.fifo` -> `orders-dlq.fifo`."""
    stem = name.removesuffix(".fifo")
    return f"{stem}-dlq.fifo" if stem != name else f"{name}-dlq"


def start_moto_server() -> tuple[Any, str]:
    """A moto server (SQS, S3, SNS...) in a thread of this process on 127.0.0.1 and a free port: (server, endpoint).

    Raises ImportError without the `local` extra. Stop it with `server.stop()`.
    """
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - an optional dependency

    _quieten_server_loggers()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


async def create_queue_with_dead_letter_queue(
    client: SQSClient,
    name: str,
    *,
    dead_letter_queue_name: str,
    max_receive_count: int,
    attributes: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Create a queue whose messages move to a new dead-letter queue after `max_receive_count` receives.

    For a FIFO queue, both names end in `.fifo` and `attributes` holds `FifoQueue`. Returns both URLs.
    """
    fifo = {key: value for key, value in (attributes or {}).items() if key == "FifoQueue"}
    created = await client.create_queue(QueueName=dead_letter_queue_name, Attributes=fifo)  # type: ignore[arg-type]
    dead_letter_queue_url = created["QueueUrl"]
    arn = await client.get_queue_attributes(QueueUrl=dead_letter_queue_url, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": max_receive_count}
    queue_attributes = {**(attributes or {}), "RedrivePolicy": json.dumps(redrive)}
    queue_url = (await client.create_queue(QueueName=name, Attributes=queue_attributes))["QueueUrl"]  # type: ignore[arg-type]
    return queue_url, dead_letter_queue_url


@dataclass
class LocalSQS:
    """A moto server in a thread of this process, with a queue, its dead-letter queue and an S3 bucket for payloads.

    While it runs, this process's AWS environment (endpoint, test credentials, region) points at it.
    """

    endpoint: str = ""
    queue_url: str = ""
    dead_letter_queue_url: str = ""
    bucket: str = BUCKET_NAME
    # The queues to create, each with a dead-letter queue `<name>-dlq`; none: QUEUE_NAME and DEAD_LETTER_QUEUE_NAME.
    queue_names: Sequence[str] = ()
    queue_urls: dict[str, str] = field(default_factory=dict)
    _server: Any = None
    _saved: dict[str, str | None] = field(default_factory=dict)

    async def start(self) -> None:
        """Start the server, point this process's AWS environment at it, create the queues."""
        try:
            self._server, self.endpoint = start_moto_server()
        except ImportError as exc:
            raise ConfigError(
                "MQ_QUEUE_URL", "", "a queue URL, or install the embedded SQS server: pip install 'mq-service[local]'"
            ) from exc
        self._saved = {key: os.environ.get(key) for key in _ENV_KEYS}
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.update(
            AWS_ENDPOINT_URL_SQS=self.endpoint,
            AWS_ENDPOINT_URL_S3=self.endpoint,
            AWS_REGION=REGION,
            **_TEST_CREDENTIALS,
        )
        await self._create_queues()
        await self._create_bucket()
        _log.info("local SQS server started", extra={"endpoint": self.endpoint, "queue_url": self.queue_url})

    def describe(self) -> list[str]:
        """Lines for the start-up banner: where the local server and its queues are."""
        return [
            f"  local SQS:      {self.endpoint}  (embedded; state is lost when the service stops)",
            f"  dead letters:   {self.dead_letter_queue_url}  (after {MAX_RECEIVE_COUNT} receives)",
            f"  large payloads: s3://{self.bucket}  (same local server)",
            f"  AWS CLI:        {self.aws_cli_command('list-queues')}",
        ]

    def aws_cli_command(self, arguments: str) -> str:
        """An `aws sqs` command line for this server that works with AWS CLI v1 and v2.

        v1 ignores AWS_ENDPOINT_URL_SQS and reads only AWS_DEFAULT_REGION: hence `--endpoint-url` and both variables.
        """
        credentials = " ".join(f"{key}={value}" for key, value in _TEST_CREDENTIALS.items())
        return (
            f"{credentials} AWS_REGION={REGION} AWS_DEFAULT_REGION={REGION} "
            f"aws --endpoint-url {self.endpoint} sqs {arguments}"
        )

    def stop(self) -> None:
        """Stop the server and restore the AWS environment."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    async def _create_queues(self) -> None:
        names = {name: _dead_letter_name(name) for name in self.queue_names} or {QUEUE_NAME: DEAD_LETTER_QUEUE_NAME}
        async with create_client(kind="botocore") as client:  # CreateQueue: only aiobotocore's client has it
            for name, dead_letter_queue_name in names.items():
                fifo = {"FifoQueue": "true"} if is_fifo(name) else {}
                url, dead_letter_url = await create_queue_with_dead_letter_queue(
                    client,
                    name,
                    dead_letter_queue_name=dead_letter_queue_name,
                    max_receive_count=MAX_RECEIVE_COUNT,
                    attributes=fifo,
                )
                self.queue_urls[name] = url
                if not self.queue_url:
                    self.queue_url, self.dead_letter_queue_url = url, dead_letter_url

    async def _create_bucket(self) -> None:
        session = get_session()
        async with session.create_client("s3", region_name=REGION) as s3:
            await s3.create_bucket(Bucket=self.bucket)
