"""A whole call set-up for one test, inside a loopback-only network namespace: a private
Mosquitto, the real fleet server (uvicorn, SQLite), the real counter agent (test-pattern
camera, test tone, its button on gpiozero's mock pins) and real headless Chromium logged in
as a Caf agent with a fake camera and microphone.

With ``network=`` (a profile name, a ``Profile`` or a started ``ShapedNetwork``), the counter
sits behind the shaped line instead (``tests/support/shaped``): it runs in the counter's
namespace on a loop of its own (``CounterInNamespace``) and reaches the server and the broker
at the office's address, through the router's NAT; the browser stays in the office.

Used by ``tests/netns`` and ``bench/call_setup.py``; both run under ``unshare --net``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from playwright.async_api import Page, expect

from appliance.app import Appliance
from appliance.call.agent import CallAgent
from appliance.call.loopback import disable_loopback_candidates
from appliance.call.machine import Phase
from appliance.config import ApplianceConfig, parse_config
from appliance.hw.ports import AudioSink, AudioSource, FrameSource, MediaDevices
from appliance.hw.ports.scanner import Scanner
from appliance.hw.ports.screen import Screen, SimulatedScreen
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.hw.screen_pygame.keyboard import PygameKeyboard
from appliance.wiring import Hardware, build_hardware
from image.enrol_rig import make_pki
from tests.support.browser import async_chromium, wait_js
from tests.support.live_server import LiveApp, live_app
from tests.support.mosquitto import Broker
from tests.support.shaped.counter import CounterInNamespace
from tests.support.shaped.measure import office_peers
from tests.support.shaped.network import ShapedNetwork, shaped_network
from tests.support.shaped.profiles import Profile
from tests.support.webapp import PASSWORD

T = TypeVar("T")

DEVICE_ID = "monts-de-chalus"
BUTTON_PIN = 17
LONG_PRESS_S = 0.6  # the counter's long press, short for tests
WAIT_S = 20.0
WEBRTC_ARGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)

# Browser-side media figures, from getStats on the console's RTCPeerConnection.
BROWSER_STATS_JS = """
async () => {
  const pc = window.guichetAgent.call && window.guichetAgent.call.pc;
  if (!pc) { return null; }
  const out = {framesDecoded: 0, audioPackets: 0, videoCodec: null};
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      out.framesDecoded += s.framesDecoded || 0;
      const codec = s.codecId && stats.get(s.codecId);
      if (codec) { out.videoCodec = codec.mimeType; }
    }
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      out.audioPackets += s.packetsReceived || 0;
    }
  });
  return out;
}
"""


# The ICE pair the browser's connection chose: its candidates' types, the counter's address.
SELECTED_PAIR_JS = """
async () => {
  const pc = window.guichetAgent.call && window.guichetAgent.call.pc;
  if (!pc) { return null; }
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      pair = stats.get(s.selectedCandidatePairId);
    }
  });
  if (!pair) { return null; }
  const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
  return {localType: local.candidateType, remoteType: remote.candidateType,
          remoteAddress: remote.address || null};
}
"""


def counter_toml(
    ws_url: str,
    token: str,
    data_dir: Path,
    camera_encoding: str,
    extra: str = "",
    *,
    questionnaire: bool = False,
    ice_loopback: bool = True,
    adaptation: bool = True,
    camera_size: tuple[int, int] = (640, 360),
) -> str:
    """The counter's config; ``extra`` is appended: more [hardware] keys, then sections.

    The questionnaire after each call is off unless asked for: the call tests expect the
    counter idle as soon as a call ends."""
    return f"""
[device]
id = "{DEVICE_ID}"
site = "Monts de Châlus"
name = "Mairie"
data_dir = "{data_dir}"

[fleet]
mqtt_url = "{{mqtt_url}}"
keepalive_s = 10
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[call]
server_url = "{ws_url}/ws/counter"
token = "{token}"
long_press_s = {LONG_PRESS_S}
reconnect_min_s = 0.2
reconnect_max_s = 1.0
ice_loopback = {"true" if ice_loopback else "false"}
adaptation = {"true" if adaptation else "false"}

[questionnaire]
enabled = {"true" if questionnaire else "false"}

[hardware]
button = "gpiozero"
light = "gpiozero"
gpio_pin_factory = "mock"
button_pin = {BUTTON_PIN}
screen = "simulated"
camera = "test_pattern"
camera_encoding = "{camera_encoding}"
camera_size = [{camera_size[0]}, {camera_size[1]}]
camera_fps = 30
audio_in = "test_tone"
audio_out = "none"
system = "simulated"
{extra}
"""


async def wait_for(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> float:
    """Poll a cheap in-process condition; return the seconds it took."""
    start = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.02)
    return time.monotonic() - start


@dataclass
class CallRig:
    live: LiveApp
    appliance: Appliance
    page: Page
    broker: Broker | None = None  # the private Mosquitto (tests stop and restart it)
    network: ShapedNetwork | None = None  # the counter's shaped line, when it has one
    counter: CounterInNamespace | None = None  # its thread and loop, behind that line

    async def on_counter(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` where the counter runs (its own loop behind a shaped line)."""
        if self.counter is None:
            return await coroutine
        return await self.counter.run_on_counter(coroutine)

    @property
    def agent(self) -> CallAgent:
        agent = self.appliance.call_agent
        assert agent is not None, "the counter runs without calls"
        return agent

    @property
    def phase(self) -> Phase:
        return self.agent.machine.phase

    @property
    def screen(self) -> SimulatedScreen:
        screen = self.appliance.hardware.screen
        assert isinstance(screen, SimulatedScreen)
        return screen

    def _pin(self) -> Any:
        factory: Any = self.appliance.hardware.pin_factory
        return factory.pin(BUTTON_PIN)

    def press(self) -> None:
        """A short press of the big button (pull-up: pressed is low)."""
        pin = self._pin()
        pin.drive_low()
        pin.drive_high()

    async def long_press(self) -> None:
        pin = self._pin()
        pin.drive_low()
        await asyncio.sleep(LONG_PRESS_S + 0.3)  # a person holding the button down
        pin.drive_high()

    async def answer(self) -> None:
        """The agent clicks "Répondre" on the first waiting call."""
        row = self.page.locator("#queue li").first
        await expect(row).to_be_visible(timeout=WAIT_S * 1000)
        await row.get_by_role("button", name="Répondre").click()

    async def selected_pair(self) -> dict[str, Any] | None:
        """The browser's chosen ICE pair (``SELECTED_PAIR_JS``), None before there is one."""
        pair: dict[str, Any] | None = await self.page.evaluate(SELECTED_PAIR_JS)
        return pair

    async def browser_stats(self) -> dict[str, Any] | None:
        stats: dict[str, Any] | None = await self.page.evaluate(BROWSER_STATS_JS)
        return stats

    async def wait_browser_frames(
        self, more_than: int, timeout_s: float = WAIT_S
    ) -> dict[str, Any]:
        """Wait until Chromium has decoded more than ``more_than`` frames of the counter."""
        async with asyncio.timeout(timeout_s):
            while True:
                stats = await self.browser_stats()
                if stats is not None and stats["framesDecoded"] > more_than:
                    return stats
                await asyncio.sleep(0.05)

    async def wait_idle(self) -> None:
        await wait_for(lambda: self.phase is Phase.IDLE, "counter idle", 30)
        await expect(self.page.locator("#call")).to_be_hidden(timeout=WAIT_S * 1000)


async def _log_in(page: Page, live: LiveApp, username: str) -> None:
    await page.goto(live.url + "/login")
    await page.get_by_label("Identifiant").fill(username)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await wait_js(page, "window.guichetAgent && window.guichetAgent.connected")


@asynccontextmanager
async def call_rig(
    tmp_path: Path,
    *,
    camera_encoding: str = "raw",
    counter_extra: str = "",
    questionnaire: bool = False,
    counter_mqtt_url: Callable[[Broker], str] | None = None,
    network: str | Profile | ShapedNetwork | None = None,
    adaptation: bool = True,  # false: the video fixed whatever the line (the baseline)
    camera_size: tuple[int, int] = (640, 360),
    scanner: Scanner | None = None,  # the counter's, instead of the simulated one
    microphone: Callable[[], AudioSource] | None = None,  # instead of the test tone
    screen: Screen | None = None,  # the counter's, instead of the simulated one
    **server_settings: Any,
) -> AsyncIterator[CallRig]:
    async with AsyncExitStack() as stack:
        if network is not None and not isinstance(network, ShapedNetwork):
            network = stack.enter_context(shaped_network(network))
        # Behind a shaped line the counter reaches the office's address, not 127.0.0.1.
        bind = "127.0.0.1" if network is None else "0.0.0.0"
        office = "127.0.0.1" if network is None else network.office_address
        broker = Broker(workdir=tmp_path / "mosquitto", bind_address=bind)
        broker.start()
        stack.callback(broker.stop)
        tls = None
        if network is not None:
            # The counter refuses plain ws:// beyond loopback (its call token would travel
            # in clear): the server speaks WSS with a test CA the counter is given.
            tls = tmp_path / "pki"
            await asyncio.to_thread(make_pki, tls, hosts=("127.0.0.1", office))
            counter_extra += f'\n[fleet.tls]\nca_file = "{tls / "ca.pem"}"\n'
        live = await stack.enter_async_context(
            live_app(
                f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
                host=bind,
                tls=tls,
                mqtt_url=broker.url,
                ingest_enabled=True,
                **server_settings,
            )
        )
        live.add_user("agent-caf", service="caf")
        token = live.add_counter(DEVICE_ID, "Monts de Châlus", "Mairie")
        text = counter_toml(
            live.ws_url_at(office),
            token,
            tmp_path / "counter",
            camera_encoding,
            counter_extra,
            questionnaire=questionnaire,
            ice_loopback=network is None,
            adaptation=adaptation,
            camera_size=camera_size,
        )
        # The counter may reach the broker another way (e.g. a relay the test can cut).
        mqtt_url = counter_mqtt_url(broker) if counter_mqtt_url is not None else None
        config = parse_config(text.replace("{mqtt_url}", mqtt_url or broker.url_at(office)))
        build = _with_parts(scanner, microphone, screen)
        counter = None
        if network is None:
            appliance = await _start_here(stack, Appliance(config, build=build))
        else:
            counter = CounterInNamespace(network.counter_ns, config, build=build)
            appliance = await _start_in_namespace(stack, network, counter, live.port)
        browser = await stack.enter_async_context(async_chromium(WEBRTC_ARGS))
        context = await browser.new_context(
            viewport={"width": 1400, "height": 900}, ignore_https_errors=tls is not None
        )
        page = await context.new_page()
        await _log_in(page, live, "agent-caf")
        rig = CallRig(live, appliance, page, broker, network, counter)
        await wait_for(lambda: rig.phase is Phase.IDLE, "counter idle with its service")
        yield rig


def _with_parts(
    scanner: Scanner | None,
    microphone: Callable[[], AudioSource] | None,
    screen: Screen | None = None,
) -> Callable[[ApplianceConfig, asyncio.AbstractEventLoop], Hardware]:
    """The counter's hardware as its config says, with ``scanner`` in place of its own
    (a bench's realistic pages; the simulated scanner's are blank), each call's
    microphone made by ``microphone`` (a bench's speech instead of the test tone) and
    ``screen`` in place of the simulated one (a real pygame screen drawing in memory)."""
    if scanner is None and microphone is None and screen is None:
        return build_hardware

    def build(config: ApplianceConfig, loop: asyncio.AbstractEventLoop) -> Hardware:
        hardware = build_hardware(config, loop)
        if screen is not None:
            hardware.screen.close()
            hardware.screen = screen
            if isinstance(screen, PygameScreen):  # its USB keyboard comes with it
                hardware.keyboard = PygameKeyboard(screen, loop=loop)
        if scanner is not None:
            hardware.scanner = scanner
        if microphone is not None and hardware.media is not None:
            hardware.media = _OwnMicrophone(hardware.media, microphone)
        return hardware

    return build


class _OwnMicrophone:
    """``MediaDevices`` whose microphone is made by the test."""

    def __init__(self, media: MediaDevices, microphone: Callable[[], AudioSource]) -> None:
        self._media = media
        self._microphone = microphone

    def camera(self) -> FrameSource:
        return self._media.camera()

    def microphone(self) -> AudioSource:
        return self._microphone()

    def speaker(self) -> AudioSink:
        return self._media.speaker()


async def _start_here(stack: AsyncExitStack, appliance: Appliance) -> Appliance:
    """The counter on the test's own loop."""
    running = asyncio.create_task(appliance.run())

    async def _stop() -> None:
        await appliance.stop()
        await running

    stack.push_async_callback(_stop)
    await asyncio.wait_for(appliance.wait_ready(), WAIT_S)
    return appliance


async def _start_in_namespace(
    stack: AsyncExitStack, network: ShapedNetwork, counter: CounterInNamespace, server_port: int
) -> Appliance:
    """The counter on a loop of its own, in the shaped network's counter namespace."""
    # Process-wide: an earlier loopback test may have made aioice offer 127.0.0.1, which
    # means nothing across namespaces.
    disable_loopback_candidates()

    async def _stop() -> None:
        await counter.stop()
        # Its WebSocket's close crosses the shaped line: let the server see it before it
        # shuts down (uvicorn fails closing a socket already closing).
        gone = network.counter_public_address
        await wait_for(lambda: gone not in office_peers(server_port), "counter gone", 10)

    stack.push_async_callback(_stop)
    return await counter.start()
