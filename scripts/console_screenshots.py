"""Retake docs/console-1280.png and docs/console-phone.png from the service as `make run` starts it.

Usage: .venv/bin/python scripts/console_screenshots.py   (needs /usr/bin/chromium: `make browser`)

Runs `mq-service run` with the embedded local SQS server and the example handlers, publishes what the README's
walk-through publishes (hello, slow, two that fail into the dead-letter queue), and photographs the console.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

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


async def dead_lettered(client: httpx.AsyncClient, count: int) -> None:
    """Publish a trickle of messages (for the chart) until `count` messages are in the dead-letter queue."""
    for second in range(60):
        messages = [{"route": "hello", "body": f"hi {second}-{i}"} for i in range(5)]
        await client.post("/publish", json={"messages": messages})
        await asyncio.sleep(1)
        if second > 15 and (await client.get("/queues")).json()["dead_letter_queue"]["visible"] >= count:
            return
    sys.exit("the failing messages did not reach the dead-letter queue in a minute")


async def main() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MQ_", "AWS_ENDPOINT"))}
    env["MQ_ADMIN_PORT"] = "0"
    process = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "mq-service"), "run", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        url = await admin_url(process)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client, async_playwright() as playwright:
            batch = [{"route": "slow", "body": {"seconds": 3}}, {"route": "fail", "body": "x"}]
            await client.post("/publish", json={"messages": [*batch, {"route": "fail", "body": "y"}]})
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            await page.goto(url + "/console")
            await dead_lettered(client, 2)
            await page.get_by_test_id("peek").click()
            await page.get_by_test_id("dlq-messages").get_by_text("route=fail").first.wait_for()
            await page.wait_for_timeout(5000)  # the errors table and queue depths refresh every 5 s
            await page.screenshot(path=DOCS / "console-1280.png", full_page=True)
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.screenshot(path=DOCS / "console-phone.png", full_page=True)
            await browser.close()
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)


if __name__ == "__main__":
    asyncio.run(main())
