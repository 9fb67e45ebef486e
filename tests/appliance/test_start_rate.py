"""The start bitrate our first answer gives the browser's video sender: on every video
codec but RTX, nothing else in the answer changed (pure, on an answer aiortc made)."""

from __future__ import annotations

import re

from aiortc import RTCPeerConnection

from appliance.call.start_rate import START_KBPS, with_start_bitrate


async def aiortc_answer() -> str:
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        offerer.addTransceiver("audio")
        offerer.addTransceiver("video")
        offerer.createDataChannel("documents")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        return str(answerer.localDescription.sdp)
    finally:
        await offerer.close()
        await answerer.close()


def payload_types(sdp: str, codec: str) -> set[str]:
    return set(re.findall(rf"^a=rtpmap:(\d+) {codec}/", sdp, re.MULTILINE))


def fmtp(sdp: str, pt: str) -> str:
    found = re.search(rf"^a=fmtp:{pt} (.*)$", sdp, re.MULTILINE)
    return found.group(1).strip() if found else ""


async def test_each_video_codec_but_rtx_gets_the_start_bitrate() -> None:
    answer = await aiortc_answer()
    given = with_start_bitrate(answer)
    media = payload_types(answer, "VP8") | payload_types(answer, "H264")
    assert media
    for pt in media:
        assert f"x-google-start-bitrate={START_KBPS}" in fmtp(given, pt).split(";")
    for pt in payload_types(answer, "rtx") | payload_types(answer, "opus"):
        assert "x-google" not in fmtp(given, pt)
        assert fmtp(given, pt) == fmtp(answer, pt)


async def test_nothing_else_changes() -> None:
    answer = await aiortc_answer()
    given = with_start_bitrate(answer, 450)
    without = re.sub(r";?x-google-start-bitrate=450", "", given)
    without = re.sub(r"^a=fmtp:\d+ \r?\n", "", without, flags=re.MULTILINE)  # VP8 had none
    assert without == answer
    assert given.count("x-google-start-bitrate=450") == len(
        payload_types(answer, "VP8") | payload_types(answer, "H264")
    )
