"""One thread per media device for its blocking calls, taken one at a time.

``asyncio.to_thread`` is not enough for PyAV containers: when a read is cancelled (the call
ends), the coroutine moves on while ``next(frames)`` keeps running in its thread, and a
``container.close()`` started next can run beside it — FFmpeg does not allow that, and a
read stuck that way leaves a thread nobody can join. A ``SerialWorker`` queues every call of
one device on one thread, so the close waits behind the read it must not overlap.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class SerialWorker:
    def __init__(self, name: str) -> None:
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._executor is None:  # first use, or reopened after a close
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        """Let the thread end once what is queued has run (not waited for)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
