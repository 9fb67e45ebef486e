"""Call set-up time: from the agent's click on "Répondre" to the first decoded video frame,
on both sides (Chromium decodes the counter's camera; the counter's screen gets the agent's).

Runs the real fleet server, counter agent and headless Chromium in a loopback-only network
namespace (it re-executes itself under ``unshare --net``; root needed), over CALLS calls,
and prints median and p90 for each side. With PROFILE (``adsl``, ``mauvais-jour``…), the
counter sits behind that shaped rural line instead (``docs/rural-network.md``).

    .venv/bin/python bench/call_setup.py [CALLS] [PROFILE]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CALLS = 12
POLL_S = 0.01


async def one_call(rig: object) -> tuple[float, float]:
    from appliance.call.machine import Phase
    from tests.support.call_harness import CallRig, wait_for

    assert isinstance(rig, CallRig)
    rig.press()
    await wait_for(lambda: rig.phase is Phase.WAITING, "queued")
    row = rig.page.locator("#queue li").first
    await row.wait_for()
    screen_before = rig.screen.frames
    button = row.get_by_role("button", name="Répondre")
    start = time.perf_counter()
    await button.click()
    browser_s = counter_s = None
    while browser_s is None or counter_s is None:
        now = time.perf_counter() - start
        if counter_s is None and rig.screen.frames > screen_before:
            counter_s = now
        if browser_s is None:
            stats = await rig.browser_stats()
            if stats is not None and stats["framesDecoded"] > 0:
                browser_s = time.perf_counter() - start
        if now > 30:
            raise TimeoutError("no frame within 30 s")
        await asyncio.sleep(POLL_S)
    await rig.page.get_by_role("button", name="Raccrocher").click()
    await rig.wait_idle()
    return browser_s, counter_s


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


async def measure(calls: int, profile: str | None) -> None:
    from tests.support.call_harness import call_rig

    with tempfile.TemporaryDirectory() as tmp:
        async with call_rig(Path(tmp), network=profile) as rig:
            results = [await one_call(rig) for _ in range(calls)]
    browser = [b for b, _ in results]
    counter = [c for _, c in results]
    line = f"shaped line '{profile}'" if profile else "loopback"
    print(f"calls: {calls} (Chromium agent ↔ counter, {line}, 640x360 test pattern)")
    for name, values in (("agent's browser", browser), ("counter's screen", counter)):
        print(
            f"{name:>17}: first decoded frame after 'Répondre' — "
            f"median {statistics.median(values) * 1000:.0f} ms, p90 {p90(values) * 1000:.0f} ms"
        )


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.support.own_netns import inside, run_again_inside

    if not inside():
        return run_again_inside()
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CALLS
    profile = sys.argv[2] if len(sys.argv) > 2 else None
    asyncio.run(measure(calls, profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
