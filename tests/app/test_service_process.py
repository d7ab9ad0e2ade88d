"""`python -m service run` as a real process: signals, exit codes, configuration errors, the embedded mode."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.process import ROOT, SERVICE_ENV, Process, env_for, publish, service_process
from tests.support.sqs import QueueFactory, eventually, queue_counts

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


async def test_sigterm_drains_in_flight_work_and_exits(
    tmp_path: Path, make_queue: QueueFactory, sqs: SQSClient
) -> None:
    url = await make_queue()
    async with service_process(env_for(url, MQ_DRAIN_TIMEOUT_S="1"), tmp_path / "stderr.log") as service:
        await publish(service.client, 3, "hello", "quick")
        await eventually(lambda: _pipeline_has(service, deleted=3))
        await publish(service.client, 4, "slow", {"seconds": 30})
        await eventually(lambda: _pipeline_has(service, in_flight=4))
        service.process.send_signal(signal.SIGTERM)
        assert await service.exit_code(30) == 0
    (drained,) = service.log_events("drained")
    assert drained["server"]["deleted"] == 3
    assert drained["server"]["released"] == 4
    assert await queue_counts(sqs, url) == (4, 0)


async def test_a_second_signal_stops_at_once_and_hands_messages_back(
    tmp_path: Path, make_queue: QueueFactory, sqs: SQSClient
) -> None:
    url = await make_queue()
    async with service_process(env_for(url, MQ_DRAIN_TIMEOUT_S="90"), tmp_path / "stderr.log") as service:
        await publish(service.client, 2, "slow", {"seconds": 90})
        await eventually(lambda: _pipeline_has(service, in_flight=2))
        service.process.send_signal(signal.SIGTERM)
        await eventually(lambda: _draining(service))
        started = time.monotonic()
        service.process.send_signal(signal.SIGINT)
        assert await service.exit_code(30) == 0
        assert time.monotonic() - started < 15
    (drained,) = service.log_events("drained")
    assert (drained["server"]["cancelled"], drained["server"]["released"]) == (2, 2)
    assert await queue_counts(sqs, url) == (2, 0)


async def test_after_drain_it_waits_for_sigterm(tmp_path: Path, make_queue: QueueFactory) -> None:
    url = await make_queue()
    async with service_process(env_for(url), tmp_path / "stderr.log") as service:
        summary = (await service.client.get("/drain")).json()
        assert set(summary) == {"server", "publisher"}
        assert (await service.client.get("/healthz")).status_code == 200
        assert (await service.client.get("/readyz")).json() == {"ready": False, "reason": "draining"}
        assert service.process.returncode is None
        service.process.send_signal(signal.SIGTERM)
        assert await service.exit_code(15) == 0


async def test_embedded_mode_handles_a_published_message_and_exits_after_drain(tmp_path: Path) -> None:
    env = {**os.environ, **SERVICE_ENV, "MQ_EXIT_AFTER_DRAIN": "true"}
    for name in ("MQ_QUEUE_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    async with service_process(env, tmp_path / "stderr.log") as service:
        assert "local SQS:" in service.stdout
        assert "/123456789012/mq-service-dlq" in service.stdout
        response = await service.client.post("/publish", json={"route": "hello", "body": "hi"})
        assert response.status_code == 200, response.text
        await eventually(lambda: _pipeline_has(service, deleted=1))
        assert (await service.client.get("/drain")).status_code == 200
        assert await service.exit_code(15) == 0


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {"MQ_CONCURRENCY": "0"}, "MQ_CONCURRENCY: '0' is not allowed; expected an integer from 1 to 100000"),
        ([], {"MQ_PROCESSOR": "fifo"}, "MQ_PROCESSOR: 'fifo' is not allowed; expected one of bounded"),
        ([], {"MQ_HANDLER": "handlers.missing:router"}, "MQ_HANDLER: 'handlers.missing:router' is not allowed"),
        ([], {"MQ_DELETION_INTERVAL_S": "60"}, "less than MQ_VISIBILITY_TIMEOUT (30)"),
        (["--wait-time-seconds", "30"], {}, "--wait-time-seconds (MQ_WAIT_TIME_SECONDS): '30' is not allowed"),
    ],
)
async def test_a_bad_configuration_stops_start_up(args: list[str], env: dict[str, str], expected: str) -> None:
    full_env = {**os.environ, **SERVICE_ENV, "MQ_QUEUE_URL": "http://127.0.0.1:9/q", **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "run", *args, cwd=ROOT, env=full_env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert stderr.decode().startswith("mq-service: configuration error: ")
    assert expected in stderr.decode()


async def test_a_taken_admin_port_is_a_configuration_error(make_queue: QueueFactory) -> None:
    url = await make_queue()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = env_for(url, MQ_ADMIN_PORT=str(taken.getsockname()[1]))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "run", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "MQ_ADMIN_HOST/MQ_ADMIN_PORT" in stderr.decode()


async def _pipeline_has(service: Process, **counts: int) -> bool:
    status = await service.status()
    values = {"in_flight": status["in_flight"], **status["pipeline"]}
    return all(values[name] == count for name, count in counts.items())


async def _draining(service: Process) -> bool:
    return (await service.client.get("/readyz")).status_code == 503
