"""The console's Queues section in a real headless browser, on a service consuming several queues.

One row per queue with its rates, counters, depths, pause state and rate limit, and controls that act on that queue
alone; at 1280 px and at phone width, and twenty queues at phone width without the page scrolling sideways. The
depths, dead-letter and error cards show the queue chosen above them, and nothing of the one they showed before.
With one queue the page is the single-queue view (tests/app/test_console.py), without the section.
Screenshots go where tests/app/test_console.py puts its own (CONSOLE_SCREENSHOTS when set).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Browser, Locator, Page, Request, Route, ViewportSize, expect

from service import Message, Reject
from service.app.consumers import QueueSpec
from service.sqs.urls import queue_name
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
# Every text the cards' depths label, dead-letter rows and error rows show from now on, with their card's title.
WATCH_CARDS = """() => {
  window.seenCards = [];
  for (const id of ["queue-label", "dlq-rows", "error-rows"]) {
    const node = document.getElementById(id);
    const title = node.closest("section").querySelector("h2");
    new MutationObserver(() => window.seenCards.push([title.textContent, node.textContent]))
      .observe(node, { childList: true, subtree: true, characterData: true });
  }
}"""
# Chooses payments for the cards as the operator would, and reads the cards in the same task, before any answer.
CHOOSE_PAYMENTS = """() => {
  const chooser = document.getElementById("card-queue");
  chooser.value = "payments";
  chooser.dispatchEvent(new Event("change"));
  const text = (id) => document.getElementById(id).textContent;
  return [text("queues-title"), text("dlq-title"), text("errors-title"), text("queue-label"), text("dlq-visible"),
          text("dlq-rows"), text("error-rows"), text("redrive-state")];
}"""


class Recording:
    """Records the bodies it handles; rejects them (to the dead-letter queue) while `rejecting`."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.rejecting = False

    async def __call__(self, message: Message) -> None:
        if self.rejecting:
            raise Reject(f"rejected {message.body} while the test says so")
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
        await expect(page.get_by_test_id("in-flight")).to_have_text("0 / 4")  # two queues of 2 handlers each

        scene = Scene(page, service, sqs, urls, handlers)
        await check_counters_and_rates(scene)
        await check_pause_and_resume(scene)
        await check_rate_limit(scene)
        await check_redrive(scene)

        await no_sideways_scroll(page, viewport)
        name = "console-queues-1280.png" if viewport == WIDE else "console-queues-phone.png"
        await page.screenshot(path=screenshots_dir(tmp_path) / name, full_page=True)
        assert errors == []


@dataclass
class Cards:
    """The page on a service consuming `orders` and `payments`, each with a dead-letter queue, and its cards."""

    page: Page
    sqs: SQSClient
    urls: dict[str, str]
    dlqs: dict[str, str]
    handlers: dict[str, Recording]

    @property
    def sqs_names(self) -> dict[str, str]:
        return {name: queue_name(url) for name, url in self.urls.items()}

    @property
    def dlq_rows(self) -> Locator:
        return self.page.locator("#dlq-rows tr")

    @property
    def error_rows(self) -> Locator:
        return self.page.locator("#error-rows tr")

    async def until_dead_lettered(self, counts: dict[str, int]) -> None:
        async def reached() -> bool:
            return [(await queue_counts(self.sqs, self.dlqs[name]))[0] for name in counts] == list(counts.values())

        await eventually(reached, timeout_s=30, what=f"dead letters {counts}")


async def check_first_queue_cards(cards: Cards) -> None:
    """At first the cards show orders: its depths, its dead letter, its error; none of payments'."""
    page = cards.page
    await send_messages(cards.sqs, cards.urls["orders"], ["bad-order"])
    await send_messages(cards.sqs, cards.urls["payments"], ["bad-payment-1", "bad-payment-2"])
    await cards.until_dead_lettered({"orders": 1, "payments": 2})
    await expect(page.locator("#dlq-title")).to_have_text("Dead-letter queue of orders")
    await expect(page.get_by_test_id("dlq-visible")).to_have_text("1", timeout=WAIT_MS)
    await expect(page.locator("#queue-label")).to_have_text(cards.sqs_names["orders"])
    await page.get_by_test_id("peek").click()
    await expect(cards.dlq_rows).to_have_count(1, timeout=WAIT_MS)
    await expect(cards.dlq_rows).to_contain_text("bad-order")
    await expect(cards.error_rows).to_contain_text(["Reject: rejected bad-order"], timeout=WAIT_MS)


async def check_choosing_payments(cards: Cards) -> None:
    """Choosing payments clears orders' at once, and an answer for orders still on its way is dropped when it comes."""
    page = cards.page
    release = asyncio.Event()

    async def hold(route: Route) -> None:
        await release.wait()
        await route.continue_()

    await page.route("**/queues/orders/errors", hold)
    async with page.expect_request("**/queues/orders/errors", timeout=WAIT_MS) as held:
        pass
    shown = await page.evaluate(CHOOSE_PAYMENTS)
    titles = ["Depths of payments", "Dead-letter queue of payments", "Last handler errors of payments"]
    assert shown == [*titles, "queue", "-", "Not loaded.", "Not loaded.", "no redrive yet"]
    await expect(page.locator("#queue-label")).to_have_text(cards.sqs_names["payments"], timeout=WAIT_MS)
    await expect(page.get_by_test_id("dlq-visible")).to_have_text("2", timeout=WAIT_MS)
    await expect(cards.error_rows).to_have_count(2, timeout=WAIT_MS)
    await expect(cards.error_rows).to_contain_text(["rejected bad-payment-", "rejected bad-payment-"])
    async with page.expect_response("**/queues/payments/errors", timeout=WAIT_MS):
        release.set()
        held_response = await (await held.value).response()
        assert held_response is not None
        await held_response.finished()
    await page.unroute("**/queues/orders/errors")
    await page.get_by_test_id("peek").click()
    await expect(cards.dlq_rows).to_have_count(2, timeout=WAIT_MS)
    await expect(cards.dlq_rows).to_contain_text(["bad-payment-", "bad-payment-"])


async def check_card_redrive(cards: Cards) -> None:
    """The card's redrive moves payments' dead letters back to payments, and only those."""
    page, handlers = cards.page, cards.handlers
    handlers["payments"].rejecting = False
    await page.get_by_test_id("redrive").click()
    await expect(page.get_by_test_id("redrive-state")).to_have_text("completed: 2 of 2 moved", timeout=WAIT_MS)
    await cards.until_dead_lettered({"orders": 1, "payments": 0})

    async def handled() -> bool:
        return sorted(handlers["payments"].bodies) == ["bad-payment-1", "bad-payment-2"]

    await eventually(handled, what="the redriven messages handled")
    assert handlers["orders"].bodies == []
    await expect(page.get_by_test_id("dlq-visible")).to_have_text("0", timeout=WAIT_MS)


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "phone"])
async def test_the_cards_show_the_chosen_queue(
    browser: Browser, make_queue: QueueFactory, sqs: SQSClient, tmp_path: Path, viewport: ViewportSize
) -> None:
    urls = {"orders": await make_queue(max_receive_count=3), "payments": await make_queue(max_receive_count=3)}
    dlqs = {name: await dead_letter_queue_of(sqs, url) for name, url in urls.items()}
    handlers = {name: Recording() for name in urls}
    for handler in handlers.values():
        handler.rejecting = True
    async with running(BASE, queues=specs(urls, handlers)) as service:
        page = await browser.new_page(viewport=viewport)
        errors = console_errors(page)
        await page.goto(service.runtime.admin_url + "/console")
        chooser = page.get_by_test_id("card-queue")
        await expect(chooser.locator("option")).to_have_text(["orders", "payments"], timeout=WAIT_MS)
        await expect(chooser).to_have_value("orders")
        await page.evaluate(WATCH_CARDS)
        cards = Cards(page, sqs, urls, dlqs, handlers)
        await check_first_queue_cards(cards)
        await check_choosing_payments(cards)
        await check_card_redrive(cards)

        # The chooser works from the keyboard: back to orders, whose dead letter is still there.
        await chooser.focus()
        await page.keyboard.press("ArrowUp")
        await expect(page.locator("#errors-title")).to_have_text("Last handler errors of orders")
        await expect(page.get_by_test_id("dlq-visible")).to_have_text("1", timeout=WAIT_MS)
        await expect(cards.error_rows).to_contain_text(["Reject: rejected bad-order"], timeout=WAIT_MS)

        # Nothing of one queue ever showed under a title naming the other.
        seen: list[list[str]] = await page.evaluate("window.seenCards")
        names = cards.sqs_names
        marks = {"orders": ["bad-order", names["orders"]], "payments": ["bad-payment", names["payments"]]}
        for title, shown in seen:
            other = "payments" if title.endswith(" of orders") else "orders"
            assert not any(mark in shown for mark in marks[other]), (title, shown)
        assert any("bad-payment" in shown for title, shown in seen if title.endswith(" of payments")), seen
        await no_sideways_scroll(page, viewport)
        name = "console-queues-cards-1280.png" if viewport == WIDE else "console-queues-cards-phone.png"
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
        depth_requests: list[Request] = []

        def on_request(request: Request) -> None:
            if DEPTH_READ.search(request.url):
                depth_requests.append(request)

        page.on("request", on_request)
        await page.goto(service.runtime.admin_url + "/console")
        rows = page.get_by_test_id("queue-row")
        await expect(rows).to_have_count(20, timeout=WAIT_MS)
        assert await rows.get_by_test_id("queue-name").all_text_contents() == names
        await no_sideways_scroll(page, PHONE)
        # Every row gets its depths, a few queues at a time: never all twenty at once (besides, the depths card reads
        # its own queue's, /queues/queue-00, every 5 s).
        await expect(rows.get_by_test_id("queue-depth")).to_have_text(["0 / 0 / 0"] * 20, timeout=40_000)
        # When the browser started each read (its own clock: a busy test process may see the events late, bunched).
        # A turn is DEPTHS_PER_TICK reads and the card's one; two turns in one second at most, where a timer ran late.
        depth_reads = sorted(r.timing["startTime"] / 1000 for r in depth_requests if r.timing["startTime"] > 0)
        busiest = max(sum(1 for other in depth_reads if 0 <= other - read < 1) for read in depth_reads)
        assert busiest <= 2 * (DEPTHS_PER_TICK + 1) < len(names), depth_reads
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
