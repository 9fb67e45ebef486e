"""What a test call measured (issue 14, remote support): two samples of the server
answerer's ``RTCPeerConnection`` stats, turned into the line's figures and said in French.

Pure: the samples are plain numbers (``answerer_peer.sample`` reads them from aiortc), so a
synthetic pair tests the arithmetic. The keys are stored on the action's row
(``commands.measurements``) and returned by the API; ``docs/line-test.md`` defines them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

# The stored keys, in the order the page says them, with their French label and unit.
FIGURES: Final[dict[str, tuple[str, str]]] = {
    "rtt_ms": ("Aller-retour", "ms"),
    "up_kbps": ("Débit montant", "kbit/s"),
    "down_kbps": ("Débit descendant", "kbit/s"),
    "up_loss_pct": ("Pertes montantes", "%"),
    "down_loss_pct": ("Pertes descendantes", "%"),
    "measured_s": ("Mesuré sur", "s"),
}


@dataclass(frozen=True)
class Sample:
    """One reading of the answerer's stats. ``up``: counter → server (what the server
    received); ``down``: server → counter (what it sent, and the counter's RTCP receiver
    reports on it)."""

    at_s: float  # monotonic
    bytes_received: int  # the DTLS transport's: media, RTCP and all
    bytes_sent: int
    up_packets_received: int  # inbound-rtp, audio and video
    up_packets_lost: int
    down_packets_received: int  # remote-inbound-rtp: the counter's receiver reports
    down_packets_lost: int
    rtt_s: list[float] = field(default_factory=list)  # each sender's smoothed round trip


def figures(before: Sample, after: Sample) -> dict[str, float | None]:
    """The line's figures: bitrates over the window between the samples, losses and the
    round trip as of ``after`` (cumulative over the whole test call). None: not measured
    (no receiver report came, no round trip computed)."""
    window_s = max(after.at_s - before.at_s, 1e-3)
    return {
        "rtt_ms": _round(1000 * sum(after.rtt_s) / len(after.rtt_s)) if after.rtt_s else None,
        "up_kbps": _round(_kbps(after.bytes_received - before.bytes_received, window_s)),
        "down_kbps": _round(_kbps(after.bytes_sent - before.bytes_sent, window_s)),
        "up_loss_pct": _loss(after.up_packets_lost, after.up_packets_received),
        "down_loss_pct": _loss(after.down_packets_lost, after.down_packets_received),
        "measured_s": _round(window_s),
    }


def describe(measured: Mapping[str, object]) -> str:
    """« Aller-retour : 42 ms, Débit montant : 980 kbit/s, … » (figures not measured: « — »)."""
    parts = []
    for key, (label, unit) in FIGURES.items():
        value = measured.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = f"{_french_number(value)} {unit}"
        else:
            text = "—"
        parts.append(f"{label} : {text}")
    return ", ".join(parts)


def _kbps(octets: int, seconds: float) -> float:
    return max(octets, 0) * 8 / 1000 / seconds


def _loss(lost: int, received: int) -> float | None:
    lost = max(lost, 0)
    total = lost + max(received, 0)
    return _round(100 * lost / total) if total else None


def _round(value: float) -> float:
    return round(value, 1)


def _french_number(value: float) -> str:
    """1234.5 → « 1 234,5 »; whole numbers without decimals."""
    text = f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"
    return text.replace(",", "\u202f").replace(".", ",")
