"""The call manager's timers: each call's named timers as supervised asyncio tasks.

A call holds at most one timer per name (``ring``: nobody answered in time; ``fallback``: the
preferred agents' exclusive window is over; ``counter_lost`` / ``agent_lost``: a party did
not resume in time). Starting a timer again replaces it; cancelling one from inside its own
action is harmless. A timer task that fails is logged and kept in ``errors`` (tests assert it
stays empty) instead of vanishing silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fleet_server.calls.parties import Call
from guichet import signalling as sig

logger = logging.getLogger(__name__)

TimerAction = Callable[[Call], Coroutine[Any, Any, None]]
EndCall = Callable[[Call, sig.EndReason], Coroutine[Any, Any, None]]


class CallTimers:
    """The timers of every call of one manager; ``end`` is the manager's way to end a call."""

    def __init__(self, end: EndCall) -> None:
        self._end = end
        self._tasks: set[asyncio.Task[None]] = set()
        self.errors: list[BaseException] = []

    def end_after(self, call: Call, key: str, delay_s: float, reason: sig.EndReason) -> None:
        """End ``call`` with ``reason`` after ``delay_s`` unless the timer is cancelled."""

        async def finish(c: Call) -> None:
            await self._end(c, reason)

        self.after(call, key, delay_s, finish)

    def after(self, call: Call, key: str, delay_s: float, action: TimerAction) -> None:
        """Run ``action(call)`` after ``delay_s`` unless the timer is cancelled."""
        self.cancel(call, key)

        async def fire() -> None:
            await asyncio.sleep(delay_s)
            call.timers.pop(key, None)
            logger.info("call timer fired", extra={"timer": key})
            await action(call)

        call.timers[key] = self._spawn(fire(), f"call-{key}-{call.id}")

    def cancel(self, call: Call, key: str) -> None:
        task = call.timers.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def cancel_all(self, call: Call) -> None:
        for key in list(call.timers):
            self.cancel(call, key)

    async def stop(self) -> None:
        """Cancel every timer still pending and wait for them to finish."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            self.errors.append(exc)
            logger.error("call task failed", exc_info=exc)
