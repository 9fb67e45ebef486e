"""What the counter's idle screen shows, from its schedule and the route at this moment.

What IDLE shows and what the button does there follow the counter's schedule, decided with
``guichet.schedule.decide`` on the wall clock (:func:`current_route`): an appointment due
now, one service open (press: call), several open (the CHOICE list: a short press moves the
highlight, a long press calls the highlighted service — both act on *release*, as the button
reports the hold time then; :class:`IdleState`), or nothing open (CLOSED: next openings and
a phone number; a press still asks the server, which is authoritative and answers with its
own words). Without a (current) schedule, the service the server's ``welcome`` names, as
before schedules existed. Extra choice buttons, when wired, call the N-th listed service at
once.

Pure: the call machine calls :func:`idle_screen` on entering IDLE, every minute and when a
new schedule arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from appliance.hw.ports import ScreenInfo, ScreenState
from guichet import signalling as sig
from guichet.schedule import CounterSchedule, Route, decide, next_opening_lines

IdleScreen = tuple[ScreenState, ScreenInfo]


@dataclass
class IdleState:
    """What the call machine keeps of IDLE between inputs."""

    selected: str | None = None  # the service highlighted in the CHOICE list
    armed: bool = False  # a press began on the list: its release moves or chooses
    shown: IdleScreen | None = None  # the idle screen last shown

    def changed(self, screen: IdleScreen) -> bool:
        """Remember ``screen`` as shown; True when it differs from the one before."""
        changed, self.shown = screen != self.shown, screen
        return changed

    def release(self, services: tuple[str, ...], *, long: bool) -> str | None:
        """A release on the CHOICE list: a long one gives the highlighted service, to call;
        a short one moves the highlight on (after the last, the first again) and gives None."""
        current = highlighted_service(services, self.selected)
        if long:
            return current
        self.selected = services[(services.index(current) + 1) % len(services)]
        return None


def current_route(schedule: CounterSchedule | None, now: datetime) -> Route | None:
    """What the button does at ``now`` by the schedule; None without a (current) schedule."""
    if schedule is None or now >= schedule.until:
        return None
    return decide(schedule, now)


def is_choice(route: Route | None) -> bool:
    """Several services open to walk-ins: the citizen chooses on the screen."""
    return route is not None and route.kind == "open" and len(route.services) > 1


def idle_screen(
    schedule: CounterSchedule | None,
    route: Route | None,
    welcome: sig.Welcome | None,
    *,
    highlighted: str | None,
    now: datetime,
    numbered: int = 0,
) -> IdleScreen:
    """The state and info to show; ``highlighted``: the service framed in a choice;
    ``numbered``: how many choices carry the number of an extra button (wired ones)."""
    if schedule is None or route is None:
        label = welcome.service_label if welcome else None
        return ScreenState.IDLE, ({"service": label} if label else {})
    if route.kind == "appointment":
        return ScreenState.APPOINTMENT, {"service": schedule.label(route.services[0])}
    if route.kind == "open" and len(route.services) == 1:
        return ScreenState.IDLE, {"service": schedule.label(route.services[0])}
    if route.kind == "open":
        current = highlighted_service(route.services, highlighted)
        labels = [schedule.label(code) for code in route.services]
        info: ScreenInfo = {"choices": labels, "selected": route.services.index(current)}
        if numbered:
            info["numbered"] = numbered
        return ScreenState.CHOICE, info
    info = {"lines": next_opening_lines(schedule, now)}
    if phone := schedule.contact_phone():
        info["phone"] = phone
    return ScreenState.CLOSED, info


def highlighted_service(services: tuple[str, ...], chosen: str | None) -> str:
    """The service framed in the CHOICE list: the one chosen if still open, else the first."""
    return chosen if chosen in services else services[0]


def next_minute_s(now: datetime) -> float:
    """Seconds from ``now`` to the next minute boundary."""
    return 60.0 - (now.second + now.microsecond / 1e6)
