"""The agent's first picture on the counter's screen, sooner: a start bitrate for the
browser's video sender, given in our answer (issue 16, item 1).

Chromium starts its send-side estimate at 300 kbit/s. At that rate its encoder, handed a
1280×720 camera, drops the first frames and scales down before it sends one: on loopback,
the first video packet reached the counter ~240 ms after DTLS was up, against ~50 ms for
the first voice packet (docs/decisions.md, « Call set-up time »). Chromium takes
``x-google-start-bitrate`` (kbit/s) from the codec parameters of the remote description —
for its sender, our answer — so the first answer of a call carries it on every video
codec. Renegotiations do not: Chromium would reset its estimate of a line it has measured
by then. Other browsers ignore the unknown parameter.
"""

from __future__ import annotations

from typing import Final

from aiortc.sdp import SessionDescription

# The agent → counter direction is the town hall's downlink: 2 Mbit/s on the worst profile
# of docs/rural-network.md (« mauvais-jour »). 600 kbit/s fits it with room for the voice
# and was as fast as 1,500 in the measurements; Chromium's estimate climbs from there.
START_KBPS: Final = 600
PARAMETER: Final = "x-google-start-bitrate"


def with_start_bitrate(sdp: str, kbps: int = START_KBPS) -> str:
    """``sdp`` (an answer aiortc made) with the start bitrate on each video codec but RTX."""
    description = SessionDescription.parse(sdp)
    for media in description.media:
        if media.kind != "video":
            continue
        for codec in media.rtp.codecs:
            if codec.mimeType.lower() != "video/rtx":
                codec.parameters[PARAMETER] = kbps
    return str(description)
