"""`python -m service run --config FILE` as a real process: the embedded local SQS server with the file's queues."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.process import SERVICE_ENV, service_process
from tests.support.sqs import eventually

TABLE = """
concurrency = 2
exit_after_drain = true

[[queues]]
name = "orders"
handler = "handlers.example:router"

[[queues]]
name = "audit"
handler = "handlers.example:router"
processor = "unbounded"
weight = 2
"""


async def test_make_run_with_a_table_creates_its_queues_on_the_embedded_server(tmp_path: Path) -> None:
    config = tmp_path / "mq.toml"
    config.write_text(TABLE)
    env = {**os.environ, **SERVICE_ENV, "MQ_CONFIG": str(config)}
    for name in ("MQ_QUEUE_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    async with service_process(env, tmp_path / "stderr.log") as service:
        assert "local SQS:" in service.stdout
        lines = [line for line in service.stdout.splitlines() if line.startswith("  queue ")]
        assert [line.split()[1] for line in lines] == ["orders:", "audit:"]
        assert lines[0].split()[2].endswith("/123456789012/orders")
        assert lines[1].split()[2].endswith("/123456789012/audit")
        response = await service.client.post("/publish", json={"route": "hello", "body": "hi"})
        assert response.status_code == 200, response.text

        async def handled() -> bool:
            return bool((await service.status())["pipeline"]["deleted"] == 1)

        await eventually(handled)
        assert (await service.client.get("/readyz")).json() == {"ready": True}
        assert (await service.client.post("/drain")).status_code == 200
        assert await service.exit_code(15) == 0
