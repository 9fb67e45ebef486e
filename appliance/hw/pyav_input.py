"""One PyAV input, decoded frame by frame on its own thread: the lifecycle the test
pattern, the test tone and the microphone share.

``open`` opens the container (a ``lavfi`` graph, an ALSA PCM, a Pulse source) and starts
decoding its first audio or video stream; ``next_frame`` hands out the next decoded frame;
``close`` closes the container behind any read still running (``SerialWorker``: FFmpeg
does not allow a close beside a read) and lets the thread go. Library errors pass through
unchanged: each source words them for its own device.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import av

from appliance.errors import HardwareError
from appliance.hw.serial_worker import SerialWorker


class PyavInput:
    def __init__(self, name: str) -> None:
        self._container: Any = None
        self._frames: Any = None
        self._lock = asyncio.Lock()
        self._worker = SerialWorker(name)

    async def open(
        self,
        url: str,
        *,
        format: str,
        media: Literal["audio", "video"],
        options: dict[str, str] | None = None,
    ) -> None:
        if options is None:
            self._container = await self._worker.run(av.open, url, format=format)
        else:
            self._container = await self._worker.run(av.open, url, format=format, options=options)
        self._frames = self._container.decode(**{media: 0})

    async def next_frame(self, *, closed: str) -> Any:
        """The next decoded frame; ``HardwareError(closed)`` once closed."""
        async with self._lock:
            if self._frames is None:
                raise HardwareError(closed)
            return await self._worker.run(next, self._frames)

    async def close(self) -> bool:
        """Close the container (if open) and let the thread go; True if it was open."""
        async with self._lock:
            container, self._container, self._frames = self._container, None, None
        if container is not None:
            await self._worker.run(container.close)
        self._worker.shutdown()
        return container is not None
