"""The operator's console in a real headless browser (Debian's chromium through Playwright) on the whole service.

Screenshots at 1280 px and at phone width go to a temporary folder, or to CONSOLE_SCREENSHOTS (a folder) when set.
The ones in docs/ show the service as `make run` starts it: scripts/console_screenshots.py retakes them.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.async_api import Browser, Page, expect

from service import Message
from tests.support.browser import PHONE, WAIT_MS, WIDE, console_errors, needs_chromium, screenshots_dir
from tests.support.runtime import BASE, publish, running
from tests.support.sqs import QueueFactory, dead_letter_queue_of, eventually, queue_counts

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

pytestmark = needs_chromium


class Switch:
    """A handler that fails while `failing`."""

    def __init__(self) -> None:
        self.failing = False

    async def __call__(self, message: Message) -> None:
        if self.failing:
            raise ValueError(f"cannot handle {message.body}")


async def check_errors_and_notes(page: Page) -> None:
    """Errors grouped by message, the notes on deleted and in flight, the chart's axis labels."""
    errors_table = page.get_by_test_id("errors")
    # Two messages that failed twice each are two rows of 2 attempts, with their route and a date.
    await expect(errors_table.locator("tbody tr")).to_have_count(2, timeout=WAIT_MS)
    for row in await errors_table.locator("tbody tr").all():
        cells = [text.strip() for text in await row.locator("td").all_text_contents()]
        assert cells[1] == "orders.created"
        assert cells[3] == "2", cells
        assert str(datetime.now().year) in cells[0], cells
    await expect(page.get_by_test_id("counters-note")).to_contain_text("deleted follows handled by up to 0.5 s")
    await expect(page.get_by_test_id("queues-note")).to_contain_text("not the pipeline's in this pod")
    # A nice top, every label with the same decimals.
    axes = await page.evaluate("[0.3, 1.5, 4, 7, 24, 480].map(niceAxis)")
    assert axes == [
        {"top": 1, "decimals": 1},
        {"top": 2, "decimals": 0},
        {"top": 5, "decimals": 1},
        {"top": 10, "decimals": 0},
        {"top": 50, "decimals": 0},
        {"top": 500, "decimals": 0},
    ]


async def test_the_console_follows_the_pipeline_and_drives_it(
    browser: Browser, make_queue: QueueFactory, sqs: SQSClient, tmp_path: Path
) -> None:
    # 2, not 1: a pause hands back what a receive in flight brings, and that receive counts.
    url = await make_queue(max_receive_count=2)
    dlq_url = await dead_letter_queue_of(sqs, url)
    handler = Switch()
    async with running(dataclasses.replace(BASE, queue_url=url), handler=handler) as service:
        page = await browser.new_page(viewport=WIDE)
        errors = console_errors(page)
        await page.goto(service.runtime.admin_url + "/")
        assert page.url.endswith("/console")
        await expect(page.get_by_test_id("state")).to_have_text("running", timeout=WAIT_MS)

        await publish(service.client, *({"body": f"ok-{i}"} for i in range(3)))
        await expect(page.get_by_test_id("handled")).to_have_text("3", timeout=WAIT_MS)

        await page.get_by_test_id("pause").click()
        await expect(page.get_by_test_id("state")).to_have_text("paused", timeout=WAIT_MS)
        await publish(service.client, *({"body": f"later-{i}"} for i in range(2)))
        await expect(page.get_by_test_id("queue-visible")).to_have_text("2", timeout=WAIT_MS)
        assert await page.get_by_test_id("handled").text_content() == "3"
        await page.get_by_test_id("resume").click()
        await expect(page.get_by_test_id("state")).to_have_text("running", timeout=WAIT_MS)
        await expect(page.get_by_test_id("handled")).to_have_text("5", timeout=WAIT_MS)

        handler.failing = True
        await publish(service.client, *({"body": f"poison-{i}", "route": "orders.created"} for i in range(2)))

        async def dead_lettered() -> bool:
            return (await queue_counts(sqs, dlq_url))[0] == 2

        await eventually(dead_lettered, timeout_s=30, what="two messages dead-lettered")
        await expect(page.get_by_test_id("dlq-visible")).to_have_text("2", timeout=WAIT_MS)
        await expect(page.get_by_test_id("failed")).not_to_have_text("0", timeout=WAIT_MS)
        await page.get_by_test_id("peek").click()
        await expect(page.get_by_test_id("dlq-messages")).to_contain_text("poison-", timeout=WAIT_MS)
        errors_table = page.get_by_test_id("errors")
        await expect(errors_table).to_contain_text("ValueError: cannot handle poison-")
        await check_errors_and_notes(page)
        await page.screenshot(path=screenshots_dir(tmp_path) / "console-1280.png", full_page=True)

        handler.failing = False
        await page.get_by_test_id("redrive").click()
        await expect(page.get_by_test_id("redrive-state")).to_have_text("completed: 2 of 2 moved", timeout=WAIT_MS)
        await expect(page.get_by_test_id("handled")).to_have_text("7", timeout=WAIT_MS)
        await expect(page.get_by_test_id("dlq-visible")).to_have_text("0", timeout=WAIT_MS)

        await page.set_viewport_size(PHONE)
        # At phone width the error text is on the page, not cut off at its right edge.
        error_cell = errors_table.locator("tbody tr td.body").first
        box = await error_cell.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
        await page.screenshot(path=screenshots_dir(tmp_path) / "console-phone.png", full_page=True)
        assert errors == []


async def test_the_console_asks_for_the_token_and_reports_a_wrong_one(
    browser: Browser, make_queue: QueueFactory
) -> None:
    settings = dataclasses.replace(BASE, queue_url=await make_queue(), admin_token="s3cret-token-for-console")
    async with running(settings) as service:
        page = await browser.new_page(viewport=PHONE)
        await page.goto(service.runtime.admin_url + "/console")
        auth = page.get_by_test_id("auth")
        await expect(auth).to_contain_text("needs its admin token", timeout=WAIT_MS)

        await page.get_by_test_id("token").fill("wrong")
        await page.get_by_test_id("use-token").click()
        await expect(auth).to_contain_text("token is wrong", timeout=WAIT_MS)
        await expect(page.get_by_test_id("state")).to_have_text("connecting")

        await page.get_by_test_id("token").fill("s3cret-token-for-console")
        await page.get_by_test_id("use-token").click()
        await expect(page.get_by_test_id("state")).to_have_text("running", timeout=WAIT_MS)
        await expect(auth).to_be_hidden()
        # Kept for the session (a reload does not ask again), never in a cookie.
        await page.reload()
        await expect(page.get_by_test_id("state")).to_have_text("running", timeout=WAIT_MS)
        assert await page.context.cookies() == []
