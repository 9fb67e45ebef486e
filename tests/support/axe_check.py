"""axe-core through Playwright (axe-playwright-python) on a live page: the accessibility
bar is no critical or serious violation (docs/accessibility.md)."""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

FAILING_IMPACTS = frozenset({"critical", "serious"})


async def assert_accessible(page: Page, what: str) -> None:
    """Fails with each critical or serious violation on ``page`` as it is now."""
    results = await Axe().run(page)
    bad = [
        f"[{v['impact']}] {v['id']}: {v['help']} — {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in FAILING_IMPACTS
    ]
    assert not bad, f"axe-core, {what}:\n" + "\n".join(bad)
