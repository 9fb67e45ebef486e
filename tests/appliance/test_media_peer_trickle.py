"""The counter's aiortc peer takes the browser's trickled candidates (issue 16): a second,
real aiortc peer plays the browser, its offer sent without candidates and each candidate
after, as Chromium's console does; over loopback's LAN address, as ``test_media_peer``."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import pytest

from appliance.call.peer import CallPeer, ice_ufrag
from guichet.signalling import IceCandidate
from tests.appliance.call_support import AgentPeer, TestMedia
from tests.appliance.test_media_peer import Counter

pytestmark = pytest.mark.slow

_MID = re.compile(r"^a=mid:(\S+)$")


def without_candidates(sdp: str) -> tuple[str, list[IceCandidate]]:
    """The offer as the browser sends it when it trickles (no candidates, no end), and its
    candidates as the browser's ``icecandidate`` events give them."""
    kept: list[str] = []
    candidates: list[IceCandidate] = []
    index, mid = -1, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            index, mid = index + 1, None
        elif match := _MID.match(line):
            mid = match.group(1)
        if line.startswith("a=candidate:"):
            candidates.append(IceCandidate(candidate=line[2:], sdp_mid=mid, sdp_mline_index=index))
            continue
        if line != "a=end-of-candidates":
            kept.append(line)
    return "\r\n".join(kept) + "\r\n", candidates


def counter_remote_sdp(peer: CallPeer) -> str:
    pc = peer._pc  # the connection answering the browser
    assert pc is not None
    return str(pc.remoteDescription.sdp)


def counter_remote_ports(peer: CallPeer) -> set[int]:
    """The ports of the remote candidates the counter's ICE checks know (bundled: mid 0's)."""
    pc = peer._pc
    assert pc is not None
    transport = pc.getTransceivers()[0].receiver.transport.transport
    return {c.port for c in transport.getRemoteCandidates()}


@pytest.fixture
async def agent() -> AsyncIterator[AgentPeer]:
    peer = AgentPeer()
    yield peer
    await peer.close()


async def test_trickled_candidates_are_added_and_media_flows(agent: AgentPeer) -> None:
    counter = Counter(TestMedia())
    try:
        await counter.peer.prepare()  # as on call_answered
        offer, candidates = without_candidates(await agent.offer())
        assert candidates
        assert "a=candidate" not in offer
        ufrag = ice_ufrag(offer)
        assert ufrag is not None
        # The offer's answer and its candidates, started in the order they came, before the
        # offer has been applied: the candidates wait for it.
        answering = asyncio.create_task(counter.peer.answer(offer))
        adding = [
            asyncio.create_task(counter.peer.add_candidate(ufrag, c)) for c in [*candidates, None]
        ]
        await agent.accept(await answering)
        await asyncio.gather(*adding)
        remote = counter_remote_sdp(counter.peer)
        for candidate in candidates:
            assert f"a={candidate.candidate}" in remote
        assert "a=end-of-candidates" in remote
        await agent.wait_frames(10)
        async with asyncio.timeout(20):
            await counter.screen.frame_seen.wait()
        assert counter.connected == 1
    finally:
        await counter.peer.close()


async def test_candidates_that_do_not_fit_are_ignored_and_logged(
    agent: AgentPeer, caplog: pytest.LogCaptureFixture
) -> None:
    counter = Counter(TestMedia())
    offer, candidates = without_candidates(await agent.offer())
    first = candidates[0]
    try:
        # Before any offer: nothing to add it to.
        await counter.peer.add_candidate("Xk3v", first)
        answer = await counter.peer.answer(offer)
        ufrag = ice_ufrag(offer)
        assert ufrag is not None
        with caplog.at_level(logging.INFO, logger="appliance.call.peer"):
            # Of an earlier ICE session (before a restart): not this connection's.
            await counter.peer.add_candidate("0ld1", first)
            # Valid on the wire, refused by aioice (a name that is not mDNS's): nothing raised.
            named = first.candidate.replace(first.candidate.split()[4], "guichet.example.org")
            await counter.peer.add_candidate(ufrag, first.model_copy(update={"candidate": named}))
            # An m-line the connection does not have: aiortc has nowhere to add it.
            stray = first.model_copy(update={"sdp_mid": "9", "sdp_mline_index": 9})
            await counter.peer.add_candidate(ufrag, stray)
        assert counter_remote_ports(counter.peer) == set()
        assert "candidate for another ICE session ignored" in caplog.text
        # The call goes on: the right candidates still connect it.
        await agent.accept(answer)
        for candidate in [*candidates, None]:
            await counter.peer.add_candidate(ufrag, candidate)
        bundled = {int(c.candidate.split()[5]) for c in candidates if c.sdp_mid == "0"}
        assert bundled
        assert bundled <= counter_remote_ports(counter.peer)  # the others: unbundled m-lines
        await agent.wait_frames(5)
    finally:
        await counter.peer.close()
    await counter.peer.add_candidate(ufrag, first)  # after the call: ignored
