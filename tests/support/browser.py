"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Never ``playwright install``: the browser is the system's. ``extra_args`` adds flags, e.g.
the fake camera and microphone a WebRTC test needs (``tests/support/call_harness.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager

from playwright.async_api import Browser as AsyncBrowser
from playwright.async_api import Page as AsyncPage
from playwright.async_api import async_playwright
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextmanager
def chromium(extra_args: Sequence[str] = ()) -> Iterator[Browser]:
    """A Chromium for synchronous tests (no asyncio loop may run in this thread)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, args=[*CHROMIUM_ARGS, *extra_args], headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@asynccontextmanager
async def async_chromium(extra_args: Sequence[str] = ()) -> AsyncIterator[AsyncBrowser]:
    """The same, for asyncio tests."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, args=[*CHROMIUM_ARGS, *extra_args], headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def wait_js(page: AsyncPage, expression: str, timeout_s: float = 15.0) -> None:
    """Poll a JavaScript expression until it is truthy.

    Not ``page.wait_for_function``: its in-page polling evaluates a string, which the app's
    Content-Security-Policy (no 'unsafe-eval') rightly forbids. ``page.evaluate`` goes
    through the DevTools protocol and is not subject to it.
    """
    async with asyncio.timeout(timeout_s):
        while not await page.evaluate(expression):
            await asyncio.sleep(0.05)
