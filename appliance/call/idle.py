"""What the counter's idle screen shows, from its schedule and the route at this moment.

Pure: the call machine calls :func:`idle_screen` on entering IDLE, every minute and when a
new schedule arrives. Without a (current) schedule, the service the server's ``welcome``
names, as before schedules existed.
"""

from __future__ import annotations

from datetime import datetime

from appliance.hw.ports import ScreenInfo, ScreenState
from guichet import signalling as sig
from guichet.schedule import CounterSchedule, Route, next_opening_lines

IdleScreen = tuple[ScreenState, ScreenInfo]


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
