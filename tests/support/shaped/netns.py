"""Run Python code inside a named network namespace (``/run/netns/<name>``), in a thread.

Python 3.11 has no ``os.setns``: libc's ``setns(fd, CLONE_NEWNET)`` through ctypes. It moves
only the calling thread; threads that thread starts later (an asyncio loop's executor, for
one) are born in the same namespace. Threads started by anyone else are not.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

CLONE_NEWNET = 0x4000_0000
NETNS_DIR = "/run/netns"

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(name: str) -> None:
    """Move the calling thread into the named network namespace."""
    fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def start_in_netns(name: str, target: Callable[[], T], *, thread_name: str = "") -> Future[T]:
    """Run ``target()`` in a new thread inside ``name``; its result or error in the future."""
    future: Future[T] = Future()

    def _run() -> None:
        try:
            enter_netns(name)
            future.set_result(target())
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=_run, name=thread_name or f"netns-{name}", daemon=True).start()
    return future


def call_in_netns(name: str, target: Callable[[], T], timeout_s: float = 60.0) -> T:
    """``target()`` run inside ``name``, waited for."""
    return start_in_netns(name, target).result(timeout_s)
