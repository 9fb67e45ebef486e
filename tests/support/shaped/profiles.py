"""The shaped network's named profiles: what a counter's line looks like, per direction.

"Up" is always the counter's uplink (counter → office: the counter's camera), "down" its
downlink (office → counter: the agent's video). Figures are what the harness applies:
rate with tbf on the router, loss with nftables on the router, delay and jitter in the
user-space stage (``delay_stage.py``). ``docs/rural-network.md`` has them as a table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

QUEUE_MS = 200  # the line's buffer, as time at its rate (an ADSL modem's is 100-500 ms)


@dataclass(frozen=True)
class Direction:
    """One direction of the line. ``rate_kbit=None``: not rate-limited."""

    rate_kbit: int | None = None
    delay_ms: float = 0.0  # one way
    jitter_ms: float = 0.0  # ± around delay_ms, uniform; frames keep their order
    loss_pct: float = 0.0  # random loss of every IP packet, UDP and TCP alike
    queue_ms: int = QUEUE_MS


@dataclass(frozen=True)
class Step:
    """At ``at_s`` seconds after a schedule starts, the uplink's rate becomes ``uplink_kbit``
    (None: back to the profile's own)."""

    at_s: float
    uplink_kbit: int | None


@dataclass(frozen=True)
class Profile:
    name: str
    up: Direction
    down: Direction
    block_udp: bool = False  # no UDP to or from the counter: only TCP passes
    schedule: tuple[Step, ...] = ()  # played by ShapedNetwork.play_schedule()


LAN = Profile("lan", up=Direction(), down=Direction())

ADSL = Profile(
    "adsl",
    up=Direction(rate_kbit=1000, delay_ms=60, jitter_ms=10, loss_pct=1.0),
    down=Direction(rate_kbit=8000, delay_ms=60, jitter_ms=10, loss_pct=1.0),
)

MAUVAIS_JOUR = Profile(
    "mauvais-jour",
    up=Direction(rate_kbit=512, delay_ms=150, jitter_ms=20, loss_pct=3.0),
    down=Direction(rate_kbit=2000, delay_ms=150, jitter_ms=20, loss_pct=3.0),
)

CUT_START_S = 10.0  # the coupure: this long at the ADSL rate first,
CUT_KBIT = 300  # then the uplink falls to this,
CUT_LENGTH_S = 20.0  # this long, then comes back

COUPURE = replace(
    ADSL,
    name="coupure",
    schedule=(Step(CUT_START_S, CUT_KBIT), Step(CUT_START_S + CUT_LENGTH_S, None)),
)

UDP_BLOQUE = replace(ADSL, name="udp-bloque", block_udp=True)

PROFILES: dict[str, Profile] = {
    profile.name: profile for profile in (LAN, ADSL, MAUVAIS_JOUR, COUPURE, UDP_BLOQUE)
}


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"no network profile {name!r} (known: {', '.join(PROFILES)})") from None
