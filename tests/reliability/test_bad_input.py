"""Bad input: a fuzzed admin API, bad configuration values, oversized and malformed messages to publish."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from service import Message
from service.app.config import Settings
from tests.support.reliability import ROOT, running_service, service_env, service_process
from tests.support.sqs import QueueFactory, eventually

from .fault_proxy import FaultProxy

if TYPE_CHECKING:
    pass

# ---- the admin API, fuzzed from its own OpenAPI document -----------------------------------------------------

PUBLISH_EXAMPLES = 200
OTHER_EXAMPLES = 40
FUZZ_CONCURRENCY = 16
# /drain stops the service on purpose: it is called once, at the end, rather than fuzzed.
FUZZED = [("/publish", "POST"), ("/status", "GET"), ("/healthz", "GET"), ("/readyz", "GET"), ("/openapi.json", "GET")]


def generate_cases(document: dict[str, Any]) -> list[Case[Any]]:
    """Requests generated from the document: valid and invalid ones, deterministic (derandomized), bounded."""
    schema = schemathesis.openapi.from_dict(document)
    cases: list[Case[Any]] = []
    for operations, examples in ((FUZZED[:1], PUBLISH_EXAMPLES), (FUZZED[1:], OTHER_EXAMPLES)):
        strategy = st.one_of(
            [
                schema[path][method].as_strategy(generation_mode=mode)
                for path, method in operations
                for mode in GenerationMode
            ]
        )

        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def collect(case: Case[Any]) -> None:
            cases.append(case)

        collect()
    return cases


def as_request(case: Case[Any], base_url: str) -> dict[str, Any]:
    """httpx.request keyword arguments for a generated case (schemathesis speaks `requests`)."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    request: dict[str, Any] = {key: kwargs[key] for key in ("method", "url", "headers", "params")}
    if kwargs.get("cookies"):
        cookie = "; ".join(f"{name}={value}" for name, value in kwargs["cookies"].items())
        request["headers"] = {**request["headers"], "Cookie": cookie}
    if "json" in kwargs:
        request["content"] = json.dumps(kwargs["json"]).encode()
        request["headers"] = {**request["headers"], "Content-Type": "application/json"}
    elif isinstance(kwargs.get("data"), str | bytes):
        request["content"] = kwargs["data"]
    elif "data" in kwargs:
        request["data"] = kwargs["data"]
    return request


async def test_fuzzed_admin_requests_never_get_a_server_error_nor_stop_the_service(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    url = await make_queue()
    env = service_env(
        url, tmp_path / "handled.txt", MQ_HANDLER="tests.reliability.record_handler:accept", MQ_PUBLISH_MAX_BATCH="3"
    )
    async with service_process(env, tmp_path / "service.log") as service:
        async with httpx.AsyncClient(base_url=service.admin_url, timeout=30) as client:
            document = (await client.get("/openapi.json")).json()
            documented = {
                (method.upper(), path): set(operation["responses"])
                for path, methods in document["paths"].items()
                for method, operation in methods.items()
            }
            cases = await asyncio.to_thread(generate_cases, document)
            statuses: Counter[int] = Counter()
            problems: list[str] = []
            gate = asyncio.Semaphore(FUZZ_CONCURRENCY)

            async def send(case: Case[Any]) -> None:
                async with gate:
                    response = await client.request(**as_request(case, service.admin_url))
                statuses[response.status_code] += 1
                code = response.status_code
                if code >= 500 and (code == 500 or str(code) not in documented[(case.method.upper(), case.path)]):
                    problems.append(
                        f"{case.method} {case.path} -> {code} {response.text[:300]}\n{case.as_curl_command()}"
                    )

            await asyncio.gather(*(send(case) for case in cases))
            assert service.process.returncode is None, "a request took the service down"
            assert (await client.get("/healthz")).status_code == 200
            status = (await client.get("/status")).json()
            await eventually(lambda: _handled_something(client), what="the service still handles messages")
            drained = await client.post("/drain")
            assert drained.status_code == 200
            assert (await client.get("/healthz")).status_code == 200
        service.process.send_signal(signal.SIGTERM)
        assert await service.exit_code(30) == 0
    print(f"fuzz: {len(cases)} requests, statuses {dict(sorted(statuses.items()))}, published {status['publisher']}")
    assert not problems, "\n".join(problems)
    assert len(cases) >= PUBLISH_EXAMPLES
    assert statuses[200] > 0, "the fuzz should produce accepted requests"
    assert statuses[422] > 0, "the fuzz should produce refused requests"


async def _handled_something(client: httpx.AsyncClient) -> bool:
    status = (await client.get("/status")).json()
    return bool(status["pipeline"]["handled"] > 0)


# ---- configuration: every invalid value refused at start-up, naming its variable ---------------------------------

BAD_SETTINGS: list[tuple[str, str]] = [
    ("MQ_QUEUE_URL", "ftp://127.0.0.1/q"),
    ("MQ_QUEUE_URL", "my-queue"),
    ("MQ_HANDLER", "handlers.example"),
    ("MQ_HANDLER", "handlers.example:nothing_here"),
    ("MQ_HANDLER", "no_such_module_anywhere:handler"),
    ("MQ_HANDLER", "handlers.example:DEFAULT_SLOW_SECONDS"),
    ("MQ_CONCURRENCY", "0"),
    ("MQ_CONCURRENCY", "-3"),
    ("MQ_CONCURRENCY", "ten"),
    ("MQ_CONCURRENCY", "1.5"),
    ("MQ_CONCURRENCY", "100001"),
    ("MQ_PROCESSOR", "fifo"),
    ("MQ_PROCESSOR", "round-robin"),
    ("MQ_MAX_NUMBER_OF_MESSAGES", "0"),
    ("MQ_MAX_NUMBER_OF_MESSAGES", "11"),
    ("MQ_WAIT_TIME_SECONDS", "-1"),
    ("MQ_WAIT_TIME_SECONDS", "21"),
    ("MQ_VISIBILITY_TIMEOUT", "0"),
    ("MQ_VISIBILITY_TIMEOUT", "43201"),
    ("MQ_VISIBILITY_TIMEOUT", "30s"),
    ("MQ_DELETION_INTERVAL_S", "0"),
    ("MQ_DELETION_INTERVAL_S", "nan"),
    ("MQ_DELETION_INTERVAL_S", "inf"),
    ("MQ_DELETION_INTERVAL_S", "30"),
    ("MQ_VISIBILITY_HEARTBEAT", "maybe"),
    ("MQ_VISIBILITY_HEARTBEAT", "2"),
    ("MQ_ADMIN_PORT", "-1"),
    ("MQ_ADMIN_PORT", "65536"),
    ("MQ_ADMIN_PORT", "http"),
    ("MQ_DRAIN_TIMEOUT_S", "-1"),
    ("MQ_DRAIN_TIMEOUT_S", "3601"),
    ("MQ_DRAIN_TIMEOUT_S", "nan"),
    ("MQ_EXIT_AFTER_DRAIN", "perhaps"),
    ("MQ_LOG_LEVEL", "verbose"),
    ("MQ_LOG_FORMAT", "xml"),
    ("MQ_PUBLISH_QUEUE_URL", "sqs://q"),
    ("MQ_PUBLISH_MAX_BATCH", "0"),
    ("MQ_PUBLISH_MAX_BATCH", "1001"),
    ("MQ_IDEMPOTENCY_STORE", "postgres://db/orders"),
    ("MQ_IDEMPOTENCY_STORE", "dynamodb://"),
    ("MQ_IDEMPOTENCY_KEY", "order_id"),
    ("MQ_IDEMPOTENCY_EXPIRES_S", "0"),
]
BAD_FLAGS: list[tuple[str, str, str]] = [
    ("MQ_CONCURRENCY", "--concurrency", "0"),
    ("MQ_VISIBILITY_TIMEOUT", "--visibility-timeout", "-5"),
    ("MQ_PROCESSOR", "--processor", "lifo"),
]
NOWHERE = "http://127.0.0.1:9/000000000000/nowhere"  # never reached: every case fails before it connects


async def run_cli(args: list[str], env: dict[str, str]) -> tuple[int | None, str]:
    """Run `python -m service run ARGS`; (exit code, stderr); None when it was still running after a minute (a
    refusal comes within a few seconds of start-up on a quiet machine: the margin is for a busy one)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "run", *args, cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None, "still running: the value was accepted"
    return process.returncode, stderr.decode()


async def test_every_bad_configuration_value_is_refused_naming_its_variable() -> None:
    base = {**os.environ, "MQ_QUEUE_URL": NOWHERE, "MQ_ADMIN_PORT": "0", "PYTHONPATH": str(ROOT)}
    cases: list[tuple[str, str, list[str], dict[str, str]]]
    cases = [(variable, value, [], {**base, variable: value}) for variable, value in BAD_SETTINGS]
    cases += [(variable, value, [flag, value], base) for variable, flag, value in BAD_FLAGS]
    gate = asyncio.Semaphore(4)

    async def attempt(variable: str, value: str, args: list[str], env: dict[str, str]) -> str | None:
        async with gate:
            code, stderr = await run_cli(args, env)
        lines = stderr.strip().splitlines()
        if code != 2 or len(lines) != 1 or not lines[0].startswith("mq-service: configuration error: "):
            return f"{variable}={value!r}: exit {code}, stderr {stderr[-500:]!r}"
        if variable not in lines[0] or value not in lines[0] or "expected" not in lines[0]:
            return (
                f"{variable}={value!r}: the message does not name the variable, value and what is allowed: {lines[0]}"
            )
        return None

    results = await asyncio.gather(*(attempt(*case) for case in cases))
    problems = [result for result in results if result is not None]
    print(f"bad configuration: {len(cases)} values over {len({c[0] for c in cases})} variables refused")
    assert not problems, "\n".join(problems)


# ---- messages SQS would refuse: refused before anything is sent ------------------------------------------------

MIB = 1_048_576
JSON_TYPE = {"Content-Type": "application/json"}
BAD_MESSAGES: list[tuple[str, Any, int]] = [
    ("a body over 1 MiB", {"body": "x" * (MIB + 1)}, 422),
    ("body and attributes over 1 MiB", {"body": "x" * (MIB - 100), "message_attributes": {"pad": "y" * 200}}, 422),
    (
        "one oversized message in a batch",
        {"messages": [{"body": "ok"}, {"body": "x" * (MIB + 1)}, {"body": "ok"}]},
        422,
    ),
    ("a NUL character", {"body": "before\u0000after"}, 422),
    ("a lone surrogate", {"body": "\ud800"}, 422),
    ("a control character in an attribute", {"body": "x", "message_attributes": {"a": "\u0007"}}, 422),
    (
        "a Number attribute that is no number",
        {"body": "x", "message_attributes": {"n": {"DataType": "Number", "StringValue": "NaN"}}},
        422,
    ),
    (
        "an unknown attribute type",
        {"body": "x", "message_attributes": {"n": {"DataType": "Decimal", "StringValue": "1"}}},
        422,
    ),
    ("a reserved attribute name", {"body": "x", "message_attributes": {"Amazon.trace": "v"}}, 422),
    ("11 attributes", {"body": "x", "message_attributes": {f"a{i}": "v" for i in range(11)}}, 422),
    ("an empty body", {"body": ""}, 422),
    ("a deduplication id on a standard queue", {"body": "x", "deduplication_id": "d"}, 422),
    ("a batch over the limit", {"messages": [{"body": "x"}] * 6}, 422),
]


async def test_oversized_and_malformed_messages_are_refused_before_anything_is_sent(
    make_queue: QueueFactory, through_proxy: FaultProxy
) -> None:
    settings = Settings(queue_url=await make_queue(), admin_port=0, wait_time_seconds=1, publish_max_batch=5)
    handled: list[str] = []

    async def handler(message: Message) -> None:
        handled.append(message.body)

    async with running_service(dataclasses.replace(settings), handler) as service:
        statuses = []
        for name, request, expected in BAD_MESSAGES:
            response = await service.client.post("/publish", content=json.dumps(request).encode(), headers=JSON_TYPE)
            statuses.append(response.status_code)
            assert response.status_code == expected, f"{name}: {response.status_code} {response.text[:300]}"
        raw = [b'{"body": NaN}', b"{body: 1}", b'{"body": "' + b"x" * (10 * MIB) + b'"}']
        for body in raw:
            response = await service.client.post("/publish", content=body, headers=JSON_TYPE)
            statuses.append(response.status_code)
            assert response.status_code in (400, 413, 422), response.text[:300]  # 422: NaN
        sent_while_refusing = through_proxy.calls["SendMessageBatch"] + through_proxy.calls["SendMessage"]
        assert (await service.client.get("/healthz")).status_code == 200
        ok = await service.client.post("/publish", json={"body": "a good one", "message_attributes": {"k": "v"}})
        assert ok.status_code == 200, ok.text
        await eventually(lambda: _has(handled, "a good one"), what="the good message handled")
    print(f"bad messages: {len(statuses)} refused ({dict(Counter(statuses))}), {sent_while_refusing} sends")
    assert sent_while_refusing == 0
    assert through_proxy.calls["SendMessageBatch"] == 1  # the good one went through the same proxy


async def _has(items: list[str], item: str) -> bool:
    return item in items
