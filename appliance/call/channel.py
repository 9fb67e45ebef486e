"""aiortc's ``RTCDataChannel`` as the documents session's ``Channel`` (flow-controlled)."""

from __future__ import annotations

import asyncio

from aiortc import RTCDataChannel

from guichet.documents import HIGH_WATER_BYTES, LOW_WATER_BYTES


class AiortcChannel:
    """Sends wait while more than ``HIGH_WATER_BYTES`` are queued, until aiortc's
    ``bufferedamountlow`` (below ``LOW_WATER_BYTES``) says the link caught up."""

    def __init__(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        self._low = asyncio.Event()
        self._low.set()
        channel.bufferedAmountLowThreshold = LOW_WATER_BYTES
        channel.on("bufferedamountlow", self._low.set)
        channel.on("close", self._low.set)  # release a waiting sender; its send will fail

    def send(self, data: str | bytes) -> None:
        self._channel.send(data)

    async def writable(self) -> None:
        while self._channel.bufferedAmount > HIGH_WATER_BYTES:
            if self._channel.readyState != "open":
                return
            self._low.clear()
            await self._low.wait()
