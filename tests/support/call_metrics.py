"""What a call looked and sounded like, measured on both sides for the rural-line bench and
tests: frames presented in the agent's browser (``requestVideoFrameCallback`` on the
console's ``#remote-video``), the browser's receive statistics sampled every 100 ms, and
the frames the counter's screen was given.

The computations are pure (lists of times in, figures out) so they are tested on their own.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FREEZE_S = 0.5  # the definition: more than this without a new frame is frozen
SAMPLE_MS = 100

# Installed once per page; a new call's video element restarts the frame list.
INSTALL_JS = """
() => {
  const g = window;
  if (g.guichetMetrics) { return; }
  const m = g.guichetMetrics = {frames: [], samples: [], video: null};
  const watch = () => {
    const video = document.getElementById("remote-video");
    if (video && video !== m.video && video.requestVideoFrameCallback) {
      m.video = video;
      const tick = (now) => { m.frames.push(performance.timeOrigin + now);
                              video.requestVideoFrameCallback(tick); };
      video.requestVideoFrameCallback(tick);
    }
  };
  setInterval(async () => {
    watch();
    const pc = g.guichetAgent && g.guichetAgent.call && g.guichetAgent.call.pc;
    if (!pc) { return; }
    const s = {t: performance.timeOrigin + performance.now(), framesDecoded: 0,
               videoBytes: 0, audioBytes: 0, concealed: 0, samples: 0,
               audioPackets: 0, audioLost: 0, audioFec: 0, audioLate: 0, audioEvents: 0,
               audioBufferS: 0, audioEmitted: 0,
               width: null, height: null, relay: null};
    const stats = await pc.getStats();
    stats.forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video") {
        s.framesDecoded += r.framesDecoded || 0; s.videoBytes += r.bytesReceived || 0;
        s.width = r.frameWidth || s.width; s.height = r.frameHeight || s.height;
      }
      if (r.type === "inbound-rtp" && r.kind === "audio") {
        s.audioBytes += r.bytesReceived || 0;
        // DTX: the counter sends nothing in silence and Chromium "conceals" it as silence;
        // only the rest is loss concealment.
        s.concealed += (r.concealedSamples || 0) - (r.silentConcealedSamples || 0);
        s.samples += r.totalSamplesReceived || 0;
        s.audioPackets += r.packetsReceived || 0; s.audioLost += r.packetsLost || 0;
        s.audioFec += r.fecPacketsReceived || 0;  // Opus in-band FEC copies NetEq received
        s.audioLate += r.packetsDiscarded || 0;  // arrived too late to be played
        s.audioEvents += r.concealmentEvents || 0;
        s.audioBufferS += r.jitterBufferDelay || 0;
        s.audioEmitted += r.jitterBufferEmittedCount || 0;
      }
      if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") {
        const local = stats.get(r.localCandidateId), remote = stats.get(r.remoteCandidateId);
        s.relay = [local && local.candidateType, remote && remote.candidateType]
          .includes("relay");
      }
    });
    m.samples.push(s);
  }, SAMPLE_MS);
}
""".replace("SAMPLE_MS", str(SAMPLE_MS))

TAKE_JS = """
() => {
  const m = window.guichetMetrics;
  if (!m) { return null; }
  const out = {frames: m.frames, samples: m.samples};
  m.frames = []; m.samples = [];
  return out;
}
"""


async def install(page: Any) -> None:
    await page.evaluate(INSTALL_JS)


async def take(page: Any) -> tuple[list[float], list[dict[str, Any]]]:
    """The frames presented and the samples taken since the last ``take``; times in seconds
    since the epoch (the browser and this process share the machine's clock)."""
    taken = await page.evaluate(TAKE_JS)
    if taken is None:
        return [], []
    samples = [{**s, "t": s["t"] / 1000} for s in taken["samples"]]
    return [t / 1000 for t in taken["frames"]], samples


def frozen_s(frame_times: Sequence[float], start: float, end: float) -> float:
    """Seconds of ``[start, end]`` spent more than ``FREEZE_S`` after the last frame.

    A whole gap counts once it passes the threshold (what a person sees as a frozen picture);
    the wait for the very first frame is not a freeze (that is the set-up time).
    """
    times = sorted(t for t in frame_times if start <= t <= end)
    if not times:
        return end - start
    gaps = [b - a for a, b in zip([*times, end], [*times, end][1:], strict=False)]
    return sum(g for g in gaps if g > FREEZE_S)


def freeze_count(frame_times: Sequence[float], end: float) -> int:
    times = sorted(frame_times)
    edges = [*times, end]
    return sum(1 for a, b in itertools.pairwise(edges) if b - a > FREEZE_S)


def longest_concealment_s(samples: Sequence[dict[str, Any]], rate_hz: int = 48_000) -> float:
    """The longest stretch of sampling intervals that were mostly concealed audio."""
    longest = run = 0.0
    for before, after in itertools.pairwise(samples):
        interval_s = after["t"] - before["t"]
        concealed_s = (after["concealed"] - before["concealed"]) / rate_hz
        if interval_s > 0 and concealed_s >= 0.8 * interval_s:
            run += interval_s
            longest = max(longest, run)
        else:
            run = 0.0
    return longest


def concealment_ratio(samples: Sequence[dict[str, Any]]) -> float:
    if len(samples) < 2:
        return 0.0
    total = samples[-1]["samples"] - samples[0]["samples"]
    concealed = samples[-1]["concealed"] - samples[0]["concealed"]
    return concealed / total if total > 0 else 0.0


@dataclass(frozen=True)
class VoiceFigures:
    lost: float  # share of the voice's packets lost on the line (what concealment covers)
    late: float  # share that arrived too late to be played (NetEq discarded them)
    fec: int  # Opus in-band FEC copies NetEq received
    events: int  # concealment events (each a stretch of made-up sound)
    buffer_ms: float  # NetEq's average jitter buffer delay


def voice_figures(samples: Sequence[dict[str, Any]]) -> VoiceFigures:
    """What happened to the voice's packets over the samples (Chromium's inbound-rtp)."""
    if len(samples) < 2:
        return VoiceFigures(0.0, 0.0, 0, 0, 0.0)
    first, last = samples[0], samples[-1]

    def delta(key: str) -> float:
        return float(last[key] - first[key])

    sent = delta("audioLost") + delta("audioPackets")
    emitted = delta("audioEmitted")
    return VoiceFigures(
        lost=delta("audioLost") / sent if sent > 0 else 0.0,
        late=delta("audioLate") / sent if sent > 0 else 0.0,
        fec=int(delta("audioFec")),
        events=int(delta("audioEvents")),
        buffer_ms=1000 * delta("audioBufferS") / emitted if emitted > 0 else 0.0,
    )


def received_kbps(samples: Sequence[dict[str, Any]]) -> float:
    """Video and audio bytes received per second over the samples, in kbit/s."""
    if len(samples) < 2:
        return 0.0
    seconds = samples[-1]["t"] - samples[0]["t"]
    octets = sum(samples[-1][k] - samples[0][k] for k in ("videoBytes", "audioBytes"))
    return octets * 8 / 1000 / seconds if seconds > 0 else 0.0


def p90(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=10)[-1]


@dataclass
class CounterScreenClock:
    """Wall-clock times of the agent's frames reaching the counter's screen."""

    times: list[float] = field(default_factory=list)

    def attach(self, screen: Any) -> None:
        original = screen.show_frame

        def show_frame(frame: Any, *, self_view: bool = False) -> None:
            if not self_view:
                self.times.append(time.time())
            original(frame, self_view=self_view)

        screen.show_frame = show_frame
