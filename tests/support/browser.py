"""The console's browser tests: Debian's chromium driven by Playwright, the viewports, and what a page logs.

The `browser` fixture (tests/app/conftest.py) launches it; tests skip with `needs_chromium` where it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE: ViewportSize = {"width": 1280, "height": 1100}
PHONE: ViewportSize = {"width": 390, "height": 844}
WAIT_MS = 20_000

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make browser)")


def console_errors(page: Page) -> list[str]:
    """Errors the page logs or throws, collected from now on."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def screenshots_dir(tmp_path: Path) -> Path:
    """CONSOLE_SCREENSHOTS (a folder) when set, else the test's temporary folder."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
