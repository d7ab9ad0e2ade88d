"""Cross-site requests from a real browser (headless Chromium) change and read nothing on a service without a token.

The attacking page is served by a second HTTP server on another loopback port: another origin of the same site
(127.0.0.1), the hardest case, since the browser then says `same-site`, and on `localhost`, a cross-site origin.
It tries what a page can do without CORS: a `text/plain` form POST to /publish, `no-cors` fetches that pause
and drain, an `<img>` GET of /drain, and a CORS read of /status.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import async_playwright
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.telemetry.hooks import Hooks
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, needs_chromium
from tests.support.runtime import BASE, running
from tests.support.sqs import QueueFactory, queue_counts

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

pytestmark = needs_chromium

ATTACK = """<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="{admin}/publish" enctype="text/plain" target="sink">
  <input name='{{"route": "hello", "body": "forged", "x": "' value='"}}'>
</form>
<script>
  const admin = "{admin}";
  const image = (path) => new Promise((done) => {{
    const img = new Image(); img.onload = img.onerror = done; img.src = admin + path;
  }});
  const sent = (promise) => promise.then(() => "answered", (error) => "failed: " + error);
  window.results = (async () => {{
    const loaded = new Promise((done) => document.querySelector("iframe").onload = done);
    document.getElementById("form").submit();
    await loaded;
    return [
      await sent(fetch(admin + "/pause", {{method: "POST", mode: "no-cors", body: '{{"reason": "x"}}'}})),
      await sent(fetch(admin + "/publish", {{method: "POST", mode: "no-cors", body: '{{"body": "forged"}}'}})),
      await sent(fetch(admin + "/drain", {{method: "POST", mode: "no-cors"}})),
      await sent(image("/drain")),
      await sent(image("/dlq/messages")),
      await sent(fetch(admin + "/status").then((response) => response.text())),
    ];
  }})();
</script>
</body></html>
"""


def recording(app: ASGIApp, answers: dict[str, list[int]]) -> ASGIApp:
    """The admin app, noting each request's method, path and status in `answers`."""

    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                answers.setdefault(f"{scope['method']} {scope['path']}", []).append(message["status"])
            await send(message)

        await app(scope, receive, noting if scope["type"] == "http" else send)

    return recorded


@contextmanager
def attacker(page: str) -> Iterator[int]:
    """An HTTP server on a free loopback port serving `page` at /; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("page_host", ["127.0.0.1", "localhost"], ids=["same site", "cross site"])
async def test_a_page_on_another_origin_changes_and_reads_nothing(
    make_queue: QueueFactory, sqs: SQSClient, page_host: str
) -> None:
    url = await make_queue()
    answers: dict[str, list[int]] = {}
    hooks = Hooks(wrap_asgi=lambda app: recording(app, answers))
    async with running(dataclasses.replace(BASE, queue_url=url), hooks=hooks) as service:
        admin = service.runtime.admin_url
        with attacker(ATTACK.format(admin=admin)) as port:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = await browser.new_page()

                await page.goto(f"http://{page_host}:{port}/", timeout=WAIT_MS)
                results = await page.evaluate("window.results")
                await browser.close()
        status = (await service.client.get("/status")).json()
    # Every request reached the service and was refused (the browser blocks only what it would let a page read).
    del answers["GET /status"][-1]  # the test's own read, below
    assert answers == {
        "POST /publish": [403, 403],
        "POST /pause": [403],
        "POST /drain": [403],
        "GET /drain": [405],
        "GET /dlq/messages": [403],
        "GET /status": [403],
    }, answers
    assert results[-1].startswith("failed"), results  # the CORS read of /status got nothing
    assert (status["paused"], status["draining"], status["publisher"]["published"]) == (False, False, 0)
    assert await queue_counts(sqs, url) == (0, 0)
