"""The admin API's contract: `schemathesis run --checks all` against the real service process finds nothing.

Run as a client author would: the CLI, every check on, against `python -m service run`, once per mode that changes
`/openapi.json` (a standard or a FIFO publish queue, with or without content-based deduplication, the token on or
off, one queue or a queue table of two whose per-queue routes each have their queue's schema). Only `POST /drain` is
left out: it ends the run. The operator's routes all run: `/pause` and `/resume` toggle receiving (readiness stays
200 while paused), `PUT /limits` sets a rate, and a redrive of the consumed queue's empty dead-letter queue finishes
at once. Bounded and deterministic, so a run takes seconds and a failure reproduces.
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.process import ROOT, env_for, service_process
from tests.support.sqs import QueueFactory, eventually

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES_PER_OPERATION = 25
RUN_TIMEOUT_S = 240
TOKEN = "contract-t0ken-0123"


@dataclass(frozen=True)
class Mode:
    """One shape of the contract."""

    fifo: bool
    content_based_deduplication: bool
    token: bool
    ready: bool = True  # False: the consumed queue does not exist, so /readyz answers 503 all along
    queues: bool = False  # True: a queue table of the consumed queue and a FIFO queue (MQ_CONFIG)


MODES = {
    "standard queue, token": Mode(fifo=False, content_based_deduplication=False, token=True),
    "FIFO queue, no token, never ready": Mode(fifo=True, content_based_deduplication=False, token=False, ready=False),
    "FIFO queue with content-based deduplication, token": Mode(fifo=True, content_based_deduplication=True, token=True),
    "two queues, a standard and a FIFO one, token": Mode(
        fifo=False, content_based_deduplication=False, token=True, queues=True
    ),
}
SECOND_QUEUE = "events.fifo"


async def _queue_table(make_queue: QueueFactory, consumed: str, folder: Path) -> Path:
    """A queue table of the consumed queue and a FIFO queue, each with a dead-letter queue."""
    fifo = await make_queue(fifo=True, max_receive_count=3)
    path = folder / "queues.toml"
    path.write_text(
        f'[[queues]]\nname = "orders"\nurl = "{consumed}"\n\n[[queues]]\nname = "{SECOND_QUEUE}"\nurl = "{fifo}"\n'
    )
    return path


async def _queues(make_queue: QueueFactory, mode: Mode) -> tuple[str, str]:
    """(consumed queue, publish queue)."""
    consumed = await make_queue(max_receive_count=3)  # with a (empty) dead-letter queue: peek and redrive run
    if not mode.ready:
        consumed = consumed.rsplit("/", 1)[0] + "/never-created"
    if not mode.fifo:
        return consumed, await make_queue()
    deduplication = "true" if mode.content_based_deduplication else "false"
    return consumed, await make_queue(fifo=True, ContentBasedDeduplication=deduplication)


async def _answers(client: httpx.AsyncClient, path: str) -> bool:
    return (await client.get(path)).status_code == 200


# Never ready, the consumed queue does not exist: the operator's reads of it answer SQS's refusal as a documented
# 502, which is the right answer there, not a server error (also by its name: /queues/{name}, /queues/{name}/dlq/...).
NOT_READY_CONFIG = """
[[operations]]
include-path-regex = "^/(queues|dlq/.*|queues/[^/]+|queues/[^/]+/dlq/.*)$"
checks.not_a_server_error.expected-statuses = ["2xx", "4xx", "502"]
"""


def schemathesis_config(mode: Mode, folder: Path) -> Path:
    """The project's schemathesis settings, with what this mode adds."""
    base = ROOT / "schemathesis.toml"
    if mode.ready:
        return base
    config = folder / "schemathesis.toml"
    config.write_text(base.read_text() + NOT_READY_CONFIG)
    return config


async def run_schemathesis(admin_url: str, cwd: Path, config: Path, *, token: str | None) -> tuple[int, str]:
    """`schemathesis run` with every check; (exit code, output)."""
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{admin_url}/openapi.json",
        "--checks",
        "all",
        "--exclude-path",
        "/drain",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--generation-deterministic",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
@pytest.mark.parametrize("mode", MODES.values(), ids=list(MODES))
async def test_schemathesis_finds_no_contract_defect(make_queue: QueueFactory, tmp_path: Path, mode: Mode) -> None:
    consumed, published = await _queues(make_queue, mode)
    token = TOKEN if mode.token else None
    env = env_for(consumed, MQ_PUBLISH_QUEUE_URL=published, MQ_LOG_LEVEL="WARNING", MQ_PUBLISH_MAX_BATCH="5")
    if token is not None:
        env["MQ_ADMIN_TOKEN"] = token
    if mode.queues:
        env["MQ_CONFIG"] = str(await _queue_table(make_queue, consumed, tmp_path))
    async with service_process(env, tmp_path / "service.log") as service:
        probe = "/readyz" if mode.ready else "/healthz"
        await eventually(lambda: _answers(service.client, probe), what=f"{probe} answers 200")
        document = (await service.client.get("/openapi.json")).json()
        code, output = await run_schemathesis(
            service.admin_url, tmp_path, schemathesis_config(mode, tmp_path), token=token
        )
        assert service.process.returncode is None, "the run took the service down"
        assert (await service.client.get("/healthz")).status_code == 200
    assert code == 0, output
    assert "No issues found" in output, output
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert selected is not None, output
    assert int(selected[1]) == int(selected[3]) == int(selected[2]) - 1, output  # every operation but POST /drain
    assert {"/pause", "/limits", "/queues", "/dlq/redrive", "/console/console.js"} <= set(document["paths"])
    fields = document["paths"]["/publish"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    message = fields["oneOf"][0]
    assert ("group_id" in message["properties"]) is mode.fifo
    assert ("deduplication_id" in message["required"]) is (mode.fifo and not mode.content_based_deduplication)
    assert ("security" in document["paths"]["/publish"]["post"]) is mode.token
    if mode.queues:  # each queue's publish route has its queue's schema
        fifo = document["paths"][f"/queues/{SECOND_QUEUE}/publish"]["post"]["requestBody"]["content"]
        assert "group_id" in fifo["application/json"]["schema"]["oneOf"][0]["properties"]
        assert "/queues/orders/publish" in document["paths"]
