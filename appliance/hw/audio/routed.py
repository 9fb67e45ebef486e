"""The call's loudspeaker that follows the audio route (issue 15, private listening).

``RoutedSpeaker`` is an ``AudioSink`` over two: the counter's speakers and, while a headset
is plugged in (``AudioRouting``), the headset. Each frame goes to the sink of the route in
force; when the route changes, the next frame closes the one sink (the speakers go quiet)
and opens the other — no frame is played on both. A headset whose sound card is not there
yet (the kernel makes it a moment after the USB device), or cannot be opened, leaves the
call on the speakers, tried again every ``RETRY_S``: the citizen always hears the agent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import av

from appliance.errors import HardwareError
from appliance.hw.ports import AudioSink, UsbDevice
from appliance.hw.ports.headset import AudioRouting
from guichet.contract import AudioRoute

logger = logging.getLogger(__name__)

RETRY_S = 1.0  # a headset not ready yet is tried again this often (during the call)
MakeSink = Callable[[AudioRoute, str | None], AudioSink]  # route, headset's ALSA device


class RoutedSpeaker:
    def __init__(
        self,
        routing: AudioRouting,
        make_sink: MakeSink,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._routing = routing
        self._make_sink = make_sink
        self._clock = clock
        self._sink: AudioSink | None = None
        self._target: tuple[AudioRoute, str | None] = (AudioRoute.SPEAKERS, None)
        self._retry_at = 0.0
        self._lock = asyncio.Lock()
        self._closed = False
        self.switches = 0  # route changes carried out during the call (tests)
        self.frames_played = 0  # frames handed to a sink, whichever (as the other sinks count)

    @property
    def route(self) -> AudioRoute:
        """Where the frames go now."""
        return self._target[0]

    async def open(self) -> None:
        async with self._lock:
            await self._follow(first=True)

    async def play(self, frame: av.AudioFrame) -> None:
        async with self._lock:
            if self._closed:
                return
            await self._follow(first=False)
            if self._sink is not None:
                await self._sink.play(frame)
                self.frames_played += 1

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            sink, self._sink = self._sink, None
        if sink is not None:
            await sink.close()

    async def _follow(self, *, first: bool) -> None:
        wanted = self._wanted()
        if not first and wanted == self._target:
            return
        previous, self._sink = self._sink, None
        if previous is not None:
            await previous.close()
        try:
            self._sink = await self._opened(*wanted)
            self._target = wanted
        except HardwareError as exc:
            if wanted[0] is AudioRoute.SPEAKERS:
                raise
            logger.error("headset could not be opened (%s): the speakers keep the call", exc)
            self._retry_at = self._clock() + RETRY_S
            self._sink = await self._opened(AudioRoute.SPEAKERS, None)
            self._target = (AudioRoute.SPEAKERS, None)
            return
        if not first:
            self.switches += 1
            logger.info("call audio moved to the %s", wanted[0].value)

    def _wanted(self) -> tuple[AudioRoute, str | None]:
        routing = self._routing
        if routing.route is AudioRoute.SPEAKERS:
            return AudioRoute.SPEAKERS, None
        if self._clock() < self._retry_at:
            return self._target
        device = routing.headset_device()
        if device is None:
            self._retry_at = self._clock() + RETRY_S
            return (AudioRoute.SPEAKERS, None) if self._sink is None else self._target
        return AudioRoute.HEADSET, device

    async def _opened(self, route: AudioRoute, device: str | None) -> AudioSink:
        sink = self._make_sink(route, device)
        await sink.open()
        return sink


def alsa_headset_device(usb: UsbDevice) -> str | None:
    """The ALSA device of the sound card the kernel made for this USB device (under its
    sysfs path), if it plays sound; None when there is none (yet)."""
    for id_file in sorted(Path(usb.path).glob("*/sound/card*/id")):
        if any(id_file.parent.glob("pcmC*D*p")):  # a playback PCM, not only a microphone
            card = id_file.read_text(encoding="ascii", errors="replace").strip()
            return f"plughw:CARD={card},DEV=0"
    return None
