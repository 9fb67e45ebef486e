"""Calls through a real TURN relay (a private coturn): the media of two aiortc peers that may
use nothing but the relay, and the counter's call agent relaying with the credentials its
``call_answered`` brought — never with anything of its own."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aioice import Candidate
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.call.agent import CallAgent
from appliance.call.machine import CallTimings, Phase
from appliance.hw.gpio.devices import GpiozeroButton, GpiozeroLight
from fleet_server.calls.turn import Party, TurnIssuer
from fleet_server.settings import Settings
from guichet import signalling as sig
from tests.appliance.call_support import AgentPeer, FakeFleetServer, RecordingScreen, TestMedia
from tests.support.coturn import Coturn, Transport

pytestmark = pytest.mark.slow

TOKEN = "counter-token-0123456789"
BUTTON_PIN, LIGHT_PIN = 17, 27
RELAY_ONLY = RTCIceTransportPolicy.RELAY


def issuer(turn: Coturn, *transports: Transport) -> TurnIssuer:
    """The fleet server's own credentials maker, from its settings for this coturn."""
    settings = Settings(
        database_url="sqlite://", secret_key="k" * 32, **turn.server_settings(transports)
    )
    made = settings.turn_issuer()
    assert made is not None
    return made


def configuration(server: sig.IceServer, *, relay_only: bool) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[RTCIceServer(server.urls, server.username, server.credential)],
        iceTransportPolicy=RELAY_ONLY if relay_only else RTCIceTransportPolicy.ALL,
    )


def selected_pair(pc: RTCPeerConnection) -> tuple[Candidate, Candidate]:
    """(local, remote) candidates of the pair ICE nominated (aiortc keeps it in aioice)."""
    transceiver = pc.getTransceivers()[0]
    ice = transceiver.receiver.transport.transport
    pair = ice._connection._nominated[1]
    return pair.local_candidate, pair.remote_candidate


def relay_candidates(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate") and "relay" in line]


async def test_two_peers_that_may_use_only_the_relay_exchange_media_over_tcp(
    turn_server: Coturn,
) -> None:
    """Both sides relay-only, TURN over TCP (what a counter whose UDP is blocked can use)."""
    call_id = uuid.uuid4()
    make = issuer(turn_server, "tcp")
    now = time.time()
    browser = AgentPeer(
        configuration=configuration(make.server(call_id, Party.AGENT, now), relay_only=True)
    )
    counter = AgentPeer(
        configuration=configuration(make.server(call_id, Party.COUNTER, now), relay_only=True)
    )
    try:
        offer = await browser.offer()
        assert relay_candidates(offer), "the browser side gathered no relay candidate"
        await counter.pc.setRemoteDescription(
            type(browser.pc.localDescription)(sdp=offer, type="offer")
        )
        await counter.pc.setLocalDescription(await counter.pc.createAnswer())
        await counter.blackhole.start()
        await browser.accept(counter.pc.localDescription.sdp)
        await browser.wait_frames(10)
        await counter.wait_frames(10)
        for pc in (browser.pc, counter.pc):
            local, remote = selected_pair(pc)
            assert (local.type, remote.type) == ("relay", "relay")
    finally:
        await browser.close()
        await counter.close()
    log = turn_server.log()
    assert f"{call_id}.agent" in log
    assert f"{call_id}.counter" in log


@dataclass
class Counter:
    server: FakeFleetServer
    agent: CallAgent
    factory: MockFactory
    screen: RecordingScreen

    async def wait_phase(self, phase: Phase, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while self.agent.machine.phase is not phase:
                self.screen.changed.clear()
                await self.screen.changed.wait()

    def press(self) -> None:
        pin = self.factory.pin(BUTTON_PIN)
        pin.drive_low()
        pin.drive_high()


@pytest.fixture
async def counter() -> AsyncIterator[Counter]:
    """The counter's real call agent, against a fake fleet server whose ``welcome`` gives no
    STUN or TURN server at all: whatever relays the call came with ``call_answered``."""
    loop = asyncio.get_running_loop()
    server = FakeFleetServer(token=TOKEN)
    await server.start()
    factory = MockFactory(pin_class=MockPWMPin)
    button = GpiozeroButton(BUTTON_PIN, loop=loop, pin_factory=factory, bounce_s=None)
    light = GpiozeroLight(LIGHT_PIN, pin_factory=factory)
    screen = RecordingScreen()
    agent = CallAgent(
        server_url=server.url,
        token=TOKEN,
        button=button,
        light=light,
        screen=screen,
        media=TestMedia(),
        emit=lambda _kind, _data: None,
        timings=CallTimings(long_press_s=2.0, ended_screen_s=0.2),
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )
    task = asyncio.create_task(agent.run())
    try:
        yield Counter(server, agent, factory, screen)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()
        await server.stop()
        button.close()
        light.close()


async def test_the_counter_relays_with_the_credentials_of_its_call(
    counter: Counter, turn_server: Coturn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The browser may use only the relay (TCP); the counter gets TURN over TLS in
    ``call_answered`` and nothing in ``welcome``: it allocates its relay under that call's
    name as soon as the agent answers, before the offer; the call connects, media flows both
    ways."""
    monkeypatch.setenv("SSL_CERT_FILE", str(turn_server.ca_file))  # aiortc's default context
    await counter.server.connected.wait()
    await counter.wait_phase(Phase.IDLE)
    counter.press()
    request = await counter.server.expect(sig.CallRequest)
    call_id = request.call_id
    await counter.server.send(
        sig.CallQueued(
            call_id=call_id, service="caf", service_label="Caf", requested_at=datetime.now(UTC)
        )
    )
    await counter.wait_phase(Phase.WAITING)
    now = time.time()
    for_counter = issuer(turn_server, "tls").server(call_id, Party.COUNTER, now)
    for_browser = issuer(turn_server, "tcp").server(call_id, Party.AGENT, now)
    browser = AgentPeer(configuration=configuration(for_browser, relay_only=True))
    try:
        await counter.server.send(
            sig.CallAnswered(
                call_id=call_id, agent_label="Conseiller Caf", ice_servers=[for_counter]
            )
        )
        # The counter gets ready while the browser makes its offer: it allocates its relay
        # before any offer exists.
        async with asyncio.timeout(10):
            while f"{call_id}.counter" not in turn_server.log():
                await asyncio.sleep(0.05)
        offer = sig.SessionDescription(type="offer", sdp=await browser.offer())
        await counter.server.send(sig.Description(call_id=call_id, description=offer))
        answer = await counter.server.expect(sig.Description, timeout=20)
        assert relay_candidates(answer.description.sdp), "the counter gathered no relay"
        await browser.accept(answer.description.sdp)
        await counter.wait_phase(Phase.IN_CALL)
        await browser.wait_frames(10)
        async with asyncio.timeout(20):
            while counter.screen.frames < 10:
                counter.screen.frame_seen.clear()
                await counter.screen.frame_seen.wait()
        local, _remote = selected_pair(browser.pc)
        assert local.type == "relay"
    finally:
        await browser.close()
    assert f"{call_id}.counter" in turn_server.log()
