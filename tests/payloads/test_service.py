"""Large payloads through the whole service: settings, /publish, the handler, spans and metrics, embedded mode."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.app.config import Settings
from service.consumer.message import Message
from service.errors import ConfigError
from service.telemetry import Telemetry
from tests.support.process import SERVICE_ENV, service_process
from tests.support.runtime import BASE, publish, running
from tests.support.s3 import object_keys
from tests.support.sqs import QueueFactory, eventually, until

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sqs import SQSClient

LARGE = "0123456789" * 40_000  # 400,000 bytes: over the 256 KiB threshold


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "MQ_S3_BUCKET": "payloads.example-1",
            "MQ_S3_PREFIX": "orders/",
            "MQ_S3_THRESHOLD_BYTES": "0",
            "MQ_S3_DELETE_PAYLOADS": "false",
            "MQ_S3_LEGACY_ATTRIBUTE": "true",
            "MQ_S3_MAX_BODY_BYTES": "2097152",
        }
    )
    assert (settings.s3_bucket, settings.s3_prefix, settings.s3_threshold_bytes) == ("payloads.example-1", "orders/", 0)
    assert (settings.s3_delete_payloads, settings.s3_legacy_attribute, settings.s3_max_body_bytes) == (
        False,
        True,
        2_097_152,
    )
    defaults = Settings.from_env({})
    assert (defaults.s3_bucket, defaults.s3_threshold_bytes, defaults.s3_max_body_bytes) == ("", 262_144, 33_554_432)
    assert defaults.s3_delete_payloads
    assert not defaults.s3_legacy_attribute


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MQ_S3_BUCKET", "Not_A_Bucket", "an S3 bucket name"),
        ("MQ_S3_THRESHOLD_BYTES", "2000000", "an integer from 0 to 1048576"),
        ("MQ_S3_MAX_BODY_BYTES", "1000", "an integer from 1048576 to 2147483648"),
        ("MQ_S3_DELETE_PAYLOADS", "maybe", "true/false"),
    ],
)
def test_bad_settings_name_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=variable) as error:
        Settings.from_env({variable: value})
    assert expected in str(error.value)


async def test_a_large_body_goes_from_publish_through_s3_to_the_handler(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    exporter = InMemorySpanExporter()
    telemetry = Telemetry.from_env({}, span_processor=SimpleSpanProcessor(exporter))
    bodies: list[str] = []

    async def handler(message: Message) -> None:
        bodies.append(message.body)

    settings = dataclasses.replace(BASE, queue_url=url, s3_bucket=bucket)
    async with running(settings, handler=handler, hooks=telemetry.hooks) as service:
        assert service.runtime.publisher.max_message_bytes == 32 * 1_048_576
        await publish(service.client, {"body": LARGE})
        await until(lambda: service.runtime.server.health.deleted >= 1, what="the message deleted")
        await eventually(lambda: _no_objects(s3, bucket), what="the payload object deleted")
        metrics = (await service.client.get("/metrics")).text
    assert bodies[0] == LARGE
    spans = exporter.get_finished_spans()
    (put,) = _named(spans, "S3.PutObject")
    (get,) = _named(spans, "S3.GetObject")[:1]
    (delete,) = _named(spans, "S3.DeleteObject")[:1]
    (process,) = [s for s in spans if s.name.startswith("process ")][:1]
    assert (put.attributes or {})["aws.s3.bucket"] == bucket
    # The read and the delete sit under the message's span; the upload in the same trace as the publish.
    assert get.parent is not None
    assert get.parent.span_id == process.context.span_id
    assert delete.parent is not None
    assert delete.parent.span_id == process.context.span_id
    assert put.context.trace_id == process.context.trace_id
    assert _sample(metrics, "mq_payloads_offloaded_total") == 1
    assert _sample(metrics, "mq_payloads_offloaded_size_bytes_total") == len(LARGE)
    assert _sample(metrics, "mq_payloads_orphaned_total") == 0


async def test_embedded_mode_offloads_through_its_own_s3(tmp_path: Path) -> None:
    env = {**os.environ, **SERVICE_ENV, "MQ_EXIT_AFTER_DRAIN": "true"}
    for name in ("MQ_QUEUE_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    async with service_process(env, tmp_path / "stderr.log") as service:
        assert "large payloads: s3://mq-service-payloads" in service.stdout
        response = await service.client.post("/publish", json={"route": "hello", "body": LARGE})
        assert response.status_code == 200, response.text

        async def fetched() -> bool:
            text = (await service.client.get("/metrics")).text
            return _sample(text, "mq_payloads_fetched_total") == _sample(text, "mq_payloads_deleted_total") == 1

        await eventually(fetched, what="the payload read from the local S3 and deleted")
        assert (await service.client.post("/drain")).status_code == 200
        assert await service.exit_code(15) == 0


async def _no_objects(s3: S3Client, bucket: str) -> bool:
    return await object_keys(s3, bucket) == []


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics:\n{text}"
    return float(match.group(1))
