"""The console's Queues section in a real headless browser, on a service consuming several queues.

One row per queue with its rates, counters, depths, pause state and rate limit, and controls that act on that queue
alone; at 1280 px and at phone width, and twenty queues at phone width without the page scrolling sideways. With
one queue the page is the single-queue view (tests/app/test_console.py), without the section.
Screenshots go where tests/app/test_console.py puts its own (CONSOLE_SCREENSHOTS when set).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Browser, Locator, Page, Request, ViewportSize, expect

from service import Message, Reject
from service.app.consumers import QueueSpec
from tests.support.browser import PHONE, WAIT_MS, WIDE, console_errors, needs_chromium, screenshots_dir
from tests.support.runtime import BASE, Running, running
from tests.support.sqs import QueueFactory, dead_letter_queue_of, eventually, queue_counts, send_messages

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

    from service.consumer.server import Server

pytestmark = needs_chromium

# As console.js reads them: at most this many queues' depths every 5 s.
DEPTHS_PER_TICK = 5
DEPTH_READ = re.compile(r"/queues/[^/?]+$")
# Every text a queue's rate cells show from now on, by queue and by rate.
WATCH_RATES = """() => {
  window.seenRates = {};
  for (const row of document.querySelectorAll('[data-testid="queue-row"]')) {
    const seen = (window.seenRates[row.dataset.queue] = { received: [], handled: [] });
    for (const key of Object.keys(seen)) {
      const cell = row.querySelector(`[data-testid="queue-${key}-rate"]`);
      new MutationObserver(() => seen[key].push(cell.textContent)).observe(cell, { childList: true });
    }
  }
}"""


class Recording:
    """Records the bodies it handles; rejects them (to the dead-letter queue) while `rejecting`."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.rejecting = False

    async def __call__(self, message: Message) -> None:
        if self.rejecting:
            raise Reject("rejected while the test says so")
        self.bodies.append(message.body)


def specs(urls: dict[str, str], handlers: dict[str, Recording]) -> list[QueueSpec]:
    return [
        QueueSpec(name, url, dataclasses.replace(BASE, queue_url=url), handlers[name]) for name, url in urls.items()
    ]


def row(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid="queue-row"][data-queue="{name}"]')


@dataclass
class Scene:
    """The page on a service consuming `orders` (with a dead-letter queue) and `audit` (without)."""

    page: Page
    service: Running
    sqs: SQSClient
    urls: dict[str, str]
    handlers: dict[str, Recording]

    @property
    def servers(self) -> dict[str, Server]:
        return {name: consumer.server for name, consumer in self.service.runtime.consumers.items()}

    @property
    def orders(self) -> Locator:
        return row(self.page, "orders")

    @property
    def audit(self) -> Locator:
        return row(self.page, "audit")


async def no_sideways_scroll(page: Page, viewport: ViewportSize) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the page is {width} px wide in a {viewport['width']} px viewport"


async def check_counters_and_rates(scene: Scene) -> None:
    """Each row counts its own queue's messages; its rates rose above 0 while they were handled, then fell to 0."""
    await scene.page.evaluate(WATCH_RATES)
    await send_messages(scene.sqs, scene.urls["orders"], ["o1", "o2", "o3"])
    await send_messages(scene.sqs, scene.urls["audit"], ["a1", "a2"])
    await expect(scene.orders.get_by_test_id("queue-handled")).to_have_text("3", timeout=WAIT_MS)
    await expect(scene.audit.get_by_test_id("queue-handled")).to_have_text("2", timeout=WAIT_MS)
    seen: dict[str, dict[str, list[str]]] = await scene.page.evaluate("window.seenRates")
    for name in ("orders", "audit"):
        for key in ("received", "handled"):
            assert any(float(text) > 0 for text in seen[name][key]), (name, key, seen[name][key])
            cell = row(scene.page, name).get_by_test_id(f"queue-{key}-rate")
            await expect(cell).to_have_text("0.0", timeout=WAIT_MS)
    await expect(scene.orders.get_by_test_id("queue-state")).to_have_text("receiving")


async def check_pause_and_resume(scene: Scene) -> None:
    """Pausing orders from its row pauses orders alone: audit goes on consuming; Resume consumes what waited."""
    orders, audit, servers = scene.orders, scene.audit, scene.servers
    await orders.get_by_test_id("queue-pause").click()
    await expect(orders.get_by_test_id("queue-state")).to_contain_text("paused since", timeout=WAIT_MS)
    await expect(orders.get_by_test_id("queue-pause")).to_be_hidden()
    assert (servers["orders"].paused, servers["audit"].paused) == (True, False)
    await expect(scene.page.get_by_test_id("state")).to_have_text("running (1 of 2 queues paused)")
    await send_messages(scene.sqs, scene.urls["orders"], ["o4", "o5"])
    await send_messages(scene.sqs, scene.urls["audit"], ["a3"])
    await expect(audit.get_by_test_id("queue-handled")).to_have_text("3", timeout=WAIT_MS)
    await expect(orders.get_by_test_id("queue-depth")).to_have_text("2 / 0 / 0", timeout=WAIT_MS)
    assert await orders.get_by_test_id("queue-handled").text_content() == "3"
    assert sorted(scene.handlers["orders"].bodies) == ["o1", "o2", "o3"]
    status = (await scene.service.client.get("/status")).json()
    assert (status["queues"]["orders"]["paused"], status["queues"]["audit"]["paused"]) == (True, False)

    await orders.get_by_test_id("queue-resume").click()
    await expect(orders.get_by_test_id("queue-state")).to_have_text("receiving", timeout=WAIT_MS)
    await expect(orders.get_by_test_id("queue-handled")).to_have_text("5", timeout=WAIT_MS)
    assert not servers["orders"].paused
    await expect(scene.page.get_by_test_id("state")).to_have_text("running")


async def check_rate_limit(scene: Scene) -> None:
    """The rate limit of audit, and of audit alone; Set with an empty field removes it."""
    audit, servers = scene.audit, scene.servers
    await audit.get_by_test_id("queue-limit-input").fill("5")
    await audit.get_by_test_id("queue-set-limit").click()
    await expect(audit.get_by_test_id("queue-limit")).to_have_text("5/s", timeout=WAIT_MS)
    assert (servers["audit"].rate_limit, servers["orders"].rate_limit) == (5, None)
    await expect(scene.orders.get_by_test_id("queue-limit")).to_have_text("none")
    await audit.get_by_test_id("queue-limit-input").fill("")
    await audit.get_by_test_id("queue-set-limit").click()
    await expect(audit.get_by_test_id("queue-limit")).to_have_text("none", timeout=WAIT_MS)
    assert servers["audit"].rate_limit is None


async def check_redrive(scene: Scene) -> None:
    """Only orders has a dead-letter queue, so only its row redrives; its dead letters go back and are handled."""
    orders, audit, handlers = scene.orders, scene.audit, scene.handlers
    await expect(audit.get_by_test_id("queue-dead-letters")).to_have_text("none", timeout=WAIT_MS)
    await expect(audit.get_by_test_id("queue-redrive")).to_be_hidden()
    dlq_url = await dead_letter_queue_of(scene.sqs, scene.urls["orders"])
    handlers["orders"].rejecting = True
    await send_messages(scene.sqs, scene.urls["orders"], ["poison-1", "poison-2"])

    async def dead_lettered() -> bool:
        return (await queue_counts(scene.sqs, dlq_url))[0] == 2

    await eventually(dead_lettered, timeout_s=30, what="two messages dead-lettered")
    await expect(orders.get_by_test_id("queue-dead-letters")).to_have_text("2", timeout=WAIT_MS)
    await expect(orders.get_by_test_id("queue-failed")).to_have_text("2", timeout=WAIT_MS)
    handlers["orders"].rejecting = False
    await orders.get_by_test_id("queue-redrive").click()
    state = orders.get_by_test_id("queue-redrive-state")
    await expect(state).to_have_text("redrive completed: 2 of 2 moved", timeout=WAIT_MS)
    await expect(orders.get_by_test_id("queue-handled")).to_have_text("7", timeout=WAIT_MS)
    await expect(orders.get_by_test_id("queue-dead-letters")).to_have_text("0", timeout=WAIT_MS)
    assert sorted(handlers["orders"].bodies)[-2:] == ["poison-1", "poison-2"]
    assert sorted(handlers["audit"].bodies) == ["a1", "a2", "a3"]


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "phone"])
async def test_each_row_shows_and_drives_its_own_queue(
    browser: Browser, make_queue: QueueFactory, sqs: SQSClient, tmp_path: Path, viewport: ViewportSize
) -> None:
    urls = {"orders": await make_queue(max_receive_count=3), "audit": await make_queue()}
    handlers = {name: Recording() for name in urls}
    async with running(BASE, queues=specs(urls, handlers)) as service:
        page = await browser.new_page(viewport=viewport)
        errors = console_errors(page)
        await page.goto(service.runtime.admin_url + "/console")
        rows = page.get_by_test_id("queue-row")
        await expect(rows).to_have_count(2, timeout=WAIT_MS)
        assert await rows.get_by_test_id("queue-name").all_text_contents() == ["orders", "audit"]
        # The single-queue controls would act on the first queue only: the rows have them instead.
        await expect(page.get_by_test_id("pause")).to_be_hidden()
        await expect(page.get_by_test_id("per-queue-note")).to_be_visible()
        await expect(page.locator("#dlq-title")).to_have_text("Dead-letter queue of orders")

        scene = Scene(page, service, sqs, urls, handlers)
        await check_counters_and_rates(scene)
        await check_pause_and_resume(scene)
        await check_rate_limit(scene)
        await check_redrive(scene)

        await no_sideways_scroll(page, viewport)
        name = "console-queues-1280.png" if viewport == WIDE else "console-queues-phone.png"
        await page.screenshot(path=screenshots_dir(tmp_path) / name, full_page=True)
        assert errors == []


async def test_twenty_queues_fit_a_phone_and_their_depths_are_read_in_turn(
    browser: Browser, make_queue: QueueFactory, tmp_path: Path
) -> None:
    names = [f"queue-{i:02d}" for i in range(20)]
    urls = {name: await make_queue() for name in names}
    handlers = {name: Recording() for name in names}
    async with running(BASE, queues=specs(urls, handlers)) as service:
        page = await browser.new_page(viewport=PHONE)
        errors = console_errors(page)
        depth_reads: list[float] = []

        def on_request(request: Request) -> None:
            if DEPTH_READ.search(request.url):
                depth_reads.append(time.monotonic())

        page.on("request", on_request)
        await page.goto(service.runtime.admin_url + "/console")
        rows = page.get_by_test_id("queue-row")
        await expect(rows).to_have_count(20, timeout=WAIT_MS)
        assert await rows.get_by_test_id("queue-name").all_text_contents() == names
        await no_sideways_scroll(page, PHONE)
        # Every row gets its depths, a few queues at a time: never all twenty at once.
        await expect(rows.get_by_test_id("queue-depth")).to_have_text(["0 / 0 / 0"] * 20, timeout=40_000)
        busiest = max(sum(1 for other in depth_reads if 0 <= other - read < 1) for read in depth_reads)
        assert busiest <= DEPTHS_PER_TICK, depth_reads
        assert len(depth_reads) >= 20
        await no_sideways_scroll(page, PHONE)
        await page.screenshot(path=screenshots_dir(tmp_path) / "console-queues-20-phone.png", full_page=True)
        assert errors == []


async def test_a_one_queue_service_keeps_the_single_queue_view(browser: Browser, make_queue: QueueFactory) -> None:
    url = await make_queue(max_receive_count=2)
    async with running(dataclasses.replace(BASE, queue_url=url)) as service:
        page = await browser.new_page(viewport=WIDE)
        errors = console_errors(page)
        await page.goto(service.runtime.admin_url + "/console")
        await expect(page.get_by_test_id("state")).to_have_text("running", timeout=WAIT_MS)
        await expect(page.get_by_test_id("queue-visible")).to_have_text("0", timeout=WAIT_MS)
        await expect(page.get_by_test_id("queue-section")).to_be_hidden()
        await expect(page.get_by_test_id("pause")).to_be_visible()
        await expect(page.get_by_test_id("per-queue-note")).to_be_hidden()
        await expect(page.locator("#dlq-title")).to_have_text("Dead-letter queue")
        # Everything is drawn as text (the page's CSP allows no inline script; data never becomes markup).
        script = (await service.client.get("/console/console.js")).text
        assert "innerHTML" not in script
        assert "insertAdjacentHTML" not in script
        assert errors == []
