"""The real counter agent inside the shaped network's counter namespace, still in-process.

``CounterInNamespace`` runs ``Appliance.run()`` on an asyncio loop of its own, in a thread
that joined the counter's namespace first (``netns.start_in_netns``). Everything the counter
opens — aiortc/aioice sockets, the signalling WebSocket, aiomqtt, its executor's threads —
is therefore born there, while the test keeps reading its state directly (attributes are
read across threads under the GIL; the mock button pins post to the counter's loop with
``call_soon_threadsafe``, see ``appliance/hw/_bridge.py``). Coroutines of the counter run on
its loop: ``run_on_counter``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from appliance.app import Appliance
from appliance.config import ApplianceConfig
from appliance.wiring import Hardware, build_hardware
from tests.support.shaped.netns import start_in_netns

T = TypeVar("T")
START_S = 20.0


class CounterInNamespace:
    def __init__(
        self,
        netns: str,
        config: ApplianceConfig,
        *,
        build: Callable[[ApplianceConfig, asyncio.AbstractEventLoop], Hardware] = build_hardware,
    ) -> None:
        self.netns = netns
        self.config = config
        self.build = build  # the counter's hardware, as ``Appliance`` takes it
        self._created: Future[tuple[asyncio.AbstractEventLoop, Appliance]] = Future()
        self._thread: Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._appliance: Appliance | None = None

    @property
    def appliance(self) -> Appliance:
        assert self._appliance is not None, "the counter is not started"
        return self._appliance

    async def start(self) -> Appliance:
        """Start the counter and wait until it is ready (or failed)."""
        self._thread = start_in_netns(self.netns, self._thread_main, thread_name="counter")
        thread = asyncio.wrap_future(self._thread)
        created = await self._unless_stopped(thread, asyncio.wrap_future(self._created))
        self._loop, self._appliance = created
        await self._unless_stopped(thread, self.run_on_counter(self._appliance.wait_ready()))
        return self._appliance

    @staticmethod
    async def _unless_stopped(thread: asyncio.Future[None], step: Awaitable[T]) -> T:
        """Wait for ``step``; raise the counter's error if its thread ends first."""
        waiting = asyncio.ensure_future(step)
        either: set[asyncio.Future[Any]] = {thread, waiting}
        async with asyncio.timeout(START_S):
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()
            thread.result()  # run() failed (raised here) or returned before it was ready
            raise RuntimeError("the counter stopped while starting")
        return waiting.result()

    async def run_on_counter(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the counter's loop and wait for it from this one."""
        assert self._loop is not None, "the counter is not started"
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def stop(self) -> None:
        """Stop the appliance on its own loop, wait for its thread; re-raise its failure."""
        if self._thread is None:
            return
        if self._appliance is not None and not self._thread.done():
            await self.run_on_counter(self._appliance.stop())
        await asyncio.wrap_future(self._thread)

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        appliance = Appliance(self.config, build=self.build)
        self._created.set_result((asyncio.get_running_loop(), appliance))
        await appliance.run()
