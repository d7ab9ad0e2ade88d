"""`python -m service run` as a real process: signals, exit codes, configuration errors, the embedded mode."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from service.app.cli import main
from service.app.config import ENV_VARIABLES, setting_help
from service.sqs.local import LocalSQS
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
        summary = (await service.client.post("/drain")).json()
        assert set(summary) == {"server", "publisher"}
        assert (await service.client.get("/healthz")).status_code == 200
        assert (await service.client.get("/readyz")).json() == {"ready": False, "reason": "draining"}
        assert service.process.returncode is None
        service.process.send_signal(signal.SIGTERM)
        assert await service.exit_code(15) == 0


async def test_mq_service_drain_drains_a_service_with_a_token_as_the_prestop_hook_does(
    tmp_path: Path, make_queue: QueueFactory
) -> None:
    token = "prestop-t0ken-0123456"
    url = await make_queue()
    async with service_process(env_for(url, MQ_ADMIN_TOKEN=token), tmp_path / "stderr.log") as service:
        port = service.admin_url.rsplit(":", 1)[1]
        hook_env = {**os.environ, "PYTHONPATH": str(ROOT), "MQ_ADMIN_PORT": port, "MQ_DRAIN_TIMEOUT_S": "5"}
        refused = await _drain_command({**hook_env, "MQ_ADMIN_TOKEN": "wrong-t0ken-0123456"})
        assert refused[0] == 1
        assert "401" in refused[1]
        assert await _drain_command({**hook_env, "MQ_ADMIN_TOKEN": token}) == (0, "")
        assert (await service.client.get("/readyz")).json() == {"ready": False, "reason": "draining"}
        service.process.send_signal(signal.SIGTERM)
        assert await service.exit_code(15) == 0


async def _drain_command(env: dict[str, str]) -> tuple[int, str]:
    """`python -m service drain` (the chart's preStop hook): (exit code, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "drain",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


def _embedded_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **SERVICE_ENV, **extra}
    for name in ("MQ_QUEUE_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    return env


async def test_embedded_mode_handles_a_published_message_and_exits_after_drain(tmp_path: Path) -> None:
    async with service_process(_embedded_env(MQ_EXIT_AFTER_DRAIN="true"), tmp_path / "stderr.log") as service:
        assert "local SQS:" in service.stdout
        assert "/123456789012/mq-service-dlq" in service.stdout
        assert "/metrics" in service.stdout
        queue_url = next(line.split()[1] for line in service.stdout.splitlines() if line.startswith("  queue:"))
        assert queue_url.endswith("/123456789012/mq-service")
        assert (await service.status())["settings"]["queue_url"] == queue_url
        (running,) = service.log_events("running")
        assert running["settings"]["queue_url"] == queue_url
        if shutil.which("aws") is not None:  # the banner's AWS CLI line, pasted into a shell, works
            assert queue_url in await _run_aws_cli_line(service.stdout)
        response = await service.client.post("/publish", json={"route": "hello", "body": "hi"})
        assert response.status_code == 200, response.text
        await eventually(lambda: _pipeline_has(service, deleted=1))
        assert (await service.client.post("/drain")).status_code == 200
        assert await service.exit_code(15) == 0


async def test_ctrl_c_on_an_idle_embedded_service_exits_within_seconds(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    async with service_process(_embedded_env(MQ_WAIT_TIME_SECONDS="20"), log) as service:
        assert (await service.client.post("/publish", json={"route": "hello", "body": "hi"})).status_code == 200
        await eventually(lambda: _pipeline_has(service, deleted=1))  # the receive loops are back in 20 s long polls
        started = time.monotonic()
        service.process.send_signal(signal.SIGINT)
        assert await service.exit_code(30) == 0
        # Not the 20 s of the long polls in flight: the embedded server's queues end with the process anyway.
        assert time.monotonic() - started < 8
    text = log.read_text()
    assert "not waiting for the receive calls in flight" in text
    assert "Traceback" not in text


async def test_a_second_ctrl_c_while_receive_calls_are_awaited_exits_cleanly(
    tmp_path: Path, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    log = tmp_path / "stderr.log"
    async with service_process(env_for(url, MQ_WAIT_TIME_SECONDS="20"), log) as service:
        await publish(service.client, 1, "hello", "hi")
        await eventually(lambda: _pipeline_has(service, deleted=1))
        service.process.send_signal(signal.SIGINT)

        async def waiting_said() -> bool:
            return "waiting up to 25 s for" in log.read_text()

        await eventually(waiting_said, what="the log says what the exit waits for, and how long at most")
        started = time.monotonic()
        service.process.send_signal(signal.SIGINT)
        assert await service.exit_code(30) == 0
        assert time.monotonic() - started < 10
    text = log.read_text()
    assert "(long polls of MQ_WAIT_TIME_SECONDS=20 s)" in text
    assert "SIGINT again: cancelling running handlers and receive calls" in text
    assert "Traceback" not in text
    assert "KeyboardInterrupt" not in text


async def test_the_embedded_servers_own_errors_stay_out_of_the_services_log(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    async with service_process(_embedded_env(MQ_LOG_LEVEL="INFO"), log) as service:
        # The local server has no StartMessageMoveTask: it fails the call with a traceback of its own.
        response = await service.client.post("/dlq/redrive")
        assert response.status_code == 202, response.text

        async def finished() -> bool:
            state: str = (await service.client.get("/dlq/redrive")).json()["state"]
            return state == "completed"

        await eventually(finished, what="the service's own redrive completed")
        service.process.send_signal(signal.SIGTERM)
        assert await service.exit_code(30) == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    fallbacks = [event for event in events if "no message move tasks" in event["message"]]
    assert [event["level"] for event in fallbacks] == ["WARNING"]
    assert [event for event in events if event["level"] in ("ERROR", "CRITICAL")] == []
    assert "Traceback" not in log.read_text()


def test_the_aws_cli_line_works_with_cli_v1_and_v2() -> None:
    # AWS CLI v1 ignores AWS_ENDPOINT_URL_SQS and reads AWS_DEFAULT_REGION only; v2 reads either region variable.
    line = LocalSQS(endpoint="http://127.0.0.1:4566").aws_cli_command("list-queues")
    assert "aws --endpoint-url http://127.0.0.1:4566 sqs list-queues" in line
    assert "AWS_REGION=us-east-1" in line
    assert "AWS_DEFAULT_REGION=us-east-1" in line
    assert "AWS_ENDPOINT_URL_SQS" not in line


async def _run_aws_cli_line(banner: str) -> str:
    line = next(line for line in banner.splitlines() if "AWS CLI:" in line).split("AWS CLI:", 1)[1].strip()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    process = await asyncio.create_subprocess_shell(
        line, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


def test_run_help_shows_each_flags_default_allowed_values_and_meaning(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "overrides" not in text
    assert (
        "messages handled at once (default: 10; allowed: an integer from 1 to 100000); variable MQ_CONCURRENCY" in text
    )
    assert "(default: bounded; allowed: one of bounded, unbounded, partitioned)" in text
    for name, variable in ENV_VARIABLES.items():
        assert f"variable {variable}" in text
        assert not setting_help(name).startswith("(default"), f"{name} has no meaning in the help table"


def test_an_unknown_flag_after_run_shows_runs_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--concurency", "5"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mq-service run ")
    assert "--queue-url VALUE" in err
    assert "unrecognized arguments: --concurency 5" in err


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


async def test_a_taken_admin_port_is_refused_before_the_embedded_sqs_server_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = _embedded_env(MQ_ADMIN_PORT=str(taken.getsockname()[1]), MQ_LOG_LEVEL="INFO")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "run", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "MQ_ADMIN_HOST/MQ_ADMIN_PORT" in stderr.decode()
    assert "local SQS server started" not in stderr.decode()


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
