"""The counter's own recent logs, for remote support (issue 14, item 3): the port, and the
in-memory ring every counter keeps of its JSON lines (``RingLogs``: what a counter running
without systemd — the demo, the tests — hands over; under systemd the journal has more,
across restarts: ``appliance.hw.journal.JournalctlLogs``).

Both hand over the lines the counter's logging wrote (``guichet.logs.JsonFormatter``),
nothing else: what is not logged cannot be uploaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Protocol, runtime_checkable

from guichet.logs import JsonFormatter

RING_LINES = 20_000  # ~4 MB of lines at most; an ordinary day of a counter's logs


@runtime_checkable
class LogSource(Protocol):
    """The counter's log lines of the last ``minutes``, oldest first (JSON lines)."""

    async def recent(self, minutes: int) -> list[str]: ...


class RingLogs(logging.Handler):
    """A logging handler keeping the last ``capacity`` lines, formatted as the journal gets
    them; ``install`` puts it on the root logger, ``uninstall`` takes it off."""

    def __init__(self, capacity: int = RING_LINES) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(JsonFormatter())
        self._lines: deque[tuple[float, str]] = deque(maxlen=capacity)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a logging handler never raises into the code that logged
            self.handleError(record)
            return
        with self._guard:
            self._lines.append((record.created, line))

    async def recent(self, minutes: int) -> list[str]:
        since = time.time() - minutes * 60
        with self._guard:
            return [line for at, line in self._lines if at >= since]

    def install(self) -> RingLogs:
        logging.getLogger().addHandler(self)
        return self

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self)
