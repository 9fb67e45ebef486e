"""A timeout the citizen can push back (issue 15: more time).

Where a timeout runs while the citizen reads — a question of the questionnaire, the service
list once a press moved its highlight — it runs in two stages: for ``timeout_s - warning_s``
nothing shows; then the screen says how many seconds are left and that a short press gives
more time (``more_time`` in the screen's info; spoken when speech is on), and the timeout
fires ``warning_s`` later. A short press while the warning shows restarts the whole timeout
and does nothing else (the highlight stays where it is); a long press keeps its meaning.

Pure: the machine owns one :class:`Countdown` per timeout and feeds it its two timers.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.call.phases import CallEffects


@dataclass
class Countdown:
    """One two-stage timeout: ``warn_timer`` fires first, then ``timer`` (the timeout)."""

    timer: str
    warn_timer: str
    timeout_s: float
    warning_s: float
    warned: bool = False  # the "more time" warning is on the screen

    @property
    def left_s(self) -> int:
        """Seconds left once warned, as the screen says them."""
        return round(min(self.warning_s, self.timeout_s))

    def start(self, effects: CallEffects) -> None:
        """(Re)start from the whole timeout, warning off."""
        self.warned = False
        effects.cancel_timer(self.timer)
        effects.start_timer(self.warn_timer, max(0.0, self.timeout_s - self.warning_s))

    def warn(self, effects: CallEffects) -> None:
        """``warn_timer`` fired: the warning shows; the timeout fires ``warning_s`` later."""
        self.warned = True
        effects.start_timer(self.timer, min(self.warning_s, self.timeout_s))

    def stop(self, effects: CallEffects) -> None:
        self.warned = False
        effects.cancel_timer(self.warn_timer)
        effects.cancel_timer(self.timer)
