"""Retake the console's pictures in docs/ from the service as `make run` starts it.

Usage: .venv/bin/python scripts/console_screenshots.py   (needs /usr/bin/chromium: `make browser`)

Runs `mq-service run` with the embedded local SQS server and the example handlers, publishes what the README's
walk-through publishes (hello, slow, two that fail into the dead-letter queue), and photographs the console
(docs/console-1280.png, docs/console-phone.png). Then runs it again with a queue table of three queues
(docs/console-queues-1280.png): a trickle on each, two dead letters on `orders`, `payments` paused.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from playwright.async_api import Browser, async_playwright

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


async def admin_url(process: asyncio.subprocess.Process) -> str:
    """The admin URL the banner prints."""
    assert process.stdout is not None
    while True:
        line = (await process.stdout.readline()).decode()
        if not line:
            sys.exit("mq-service exited before printing its admin URL")
        if "admin API:" in line:
            return line.split()[2]


async def dead_lettered(
    client: httpx.AsyncClient, count: int, *, trickle: dict[str, int], depths: str = "/queues"
) -> None:
    """Publish a trickle of messages (for the chart: `trickle` maps a publish path to messages a second) until
    `count` messages are in the dead-letter queue of the queue whose depths `depths` reads."""
    for second in range(60):
        for path, per_s in trickle.items():
            messages = [{"route": "hello", "body": f"{path} {second}-{i}"} for i in range(per_s)]
            await client.post(path, json={"messages": messages})
        await asyncio.sleep(1)
        if second > 15 and (await client.get(depths)).json()["dead_letter_queue"]["visible"] >= count:
            return
    sys.exit("the failing messages did not reach the dead-letter queue in a minute")


QUEUE_TABLE = """
[[queues]]
name = "orders"
handler = "handlers.example:router"
weight = 3

[[queues]]
name = "audit"
handler = "handlers.example:router"
max_messages_per_s = 20

[[queues]]
name = "payments"
handler = "handlers.example:router"
"""


@asynccontextmanager
async def service(*args: str) -> AsyncIterator[str]:
    """`mq-service run ARGS` on the embedded local SQS server; its admin URL until the block ends (then Ctrl-C)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MQ_", "AWS_ENDPOINT"))}
    env["MQ_ADMIN_PORT"] = "0"
    process = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "mq-service"), "run", *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        yield await admin_url(process)
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)


async def one_queue(browser: Browser) -> None:
    async with service() as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        batch = [{"route": "slow", "body": {"seconds": 3}}, {"route": "fail", "body": "x"}]
        await client.post("/publish", json={"messages": [*batch, {"route": "fail", "body": "y"}]})
        page = await browser.new_page(viewport={"width": 1280, "height": 1100})
        await page.goto(url + "/console")
        await dead_lettered(client, 2, trickle={"/publish": 5})
        await page.get_by_test_id("peek").click()
        await page.get_by_test_id("dlq-messages").get_by_text("route=fail").first.wait_for()
        await page.wait_for_timeout(5000)  # the errors table and queue depths refresh every 5 s
        await page.screenshot(path=DOCS / "console-1280.png", full_page=True)
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.screenshot(path=DOCS / "console-phone.png", full_page=True)
        await page.close()


async def three_queues(browser: Browser, table: Path) -> None:
    async with service("--config", str(table)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        await client.post("/queues/payments/pause", json={"reason": "card processor maintenance"})
        await client.post("/queues/payments/publish", json={"messages": [{"route": "hello", "body": "later"}] * 3})
        fails = [{"route": "fail", "body": "x"}, {"route": "fail", "body": "y"}]
        await client.post("/queues/orders/publish", json={"messages": fails})
        page = await browser.new_page(viewport={"width": 1280, "height": 1100})
        await page.goto(url + "/console")
        trickle = {"/queues/orders/publish": 6, "/queues/audit/publish": 3}
        await dead_lettered(client, len(fails), trickle=trickle, depths="/queues/orders")
        await page.get_by_test_id("peek").click()
        await page.get_by_test_id("dlq-messages").get_by_text("route=fail").first.wait_for()
        await page.wait_for_timeout(5000)  # every row's depths read again
        await page.screenshot(path=DOCS / "console-queues-1280.png", full_page=True)
        await page.close()


async def main() -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        await one_queue(browser)
        with tempfile.TemporaryDirectory() as folder:
            table = Path(folder) / "queues.toml"
            table.write_text(QUEUE_TABLE)
            await three_queues(browser, table)
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
