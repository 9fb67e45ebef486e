"""Run the appliance's long-lived tasks so that one failing part never stops the others.

Each component is a coroutine function. If it raises, the supervisor logs it, marks the
component *degraded*, waits a jittered exponential backoff and starts it again; once it has
run for ``STABLE_AFTER_S`` without failing it is *ok* again. A component that returns
normally is *stopped* and not restarted. Cancellation is never swallowed: cancelling the
supervisor's task cancels every component and propagates. systemd's ``Restart=`` stays the
last line of defence, not the first.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

logger = logging.getLogger(__name__)

RESTART_MIN_S = 1.0  # a crash loop costs at most one attempt a second…
RESTART_MAX_S = 60.0  # …and backs off to one a minute
STABLE_AFTER_S = 30.0  # running this long after a restart counts as recovered

HealthState = Literal["starting", "ok", "degraded", "stopped"]


def backoff_delay(attempt: int, min_s: float, max_s: float) -> float:
    """Exponential backoff with full jitter: uniform in [min_s, min(max_s, min_s·2^attempt)].

    The lower bound keeps a crash or reconnect loop from spinning; the jitter spreads a
    fleet of counters that all lost the broker at the same moment.
    """
    ceiling = min(max_s, min_s * (2 ** min(attempt, 32)))
    return random.uniform(min_s, max(min_s, ceiling))


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    name: str
    state: HealthState
    restarts: int = 0
    last_error: str | None = None
    since: float = 0.0  # time.monotonic() of the last state change


HealthListener = Callable[[ComponentHealth], None]


class Supervisor:
    """Runs named components until cancelled; ``health`` says how each one is doing."""

    def __init__(
        self,
        *,
        restart_min_s: float = RESTART_MIN_S,
        restart_max_s: float = RESTART_MAX_S,
        stable_after_s: float = STABLE_AFTER_S,
        on_change: HealthListener | None = None,
    ) -> None:
        self.restart_min_s = restart_min_s
        self.restart_max_s = restart_max_s
        self.stable_after_s = stable_after_s
        self._on_change = on_change
        self._health: dict[str, ComponentHealth] = {}

    @property
    def health(self) -> Mapping[str, ComponentHealth]:
        return dict(self._health)

    def degraded(self) -> list[ComponentHealth]:
        return [h for h in self._health.values() if h.state == "degraded"]

    async def run(self, components: Mapping[str, Callable[[], Awaitable[None]]]) -> None:
        """Run every component; returns when all have stopped, raises only CancelledError."""
        async with asyncio.TaskGroup() as group:
            for name, factory in components.items():
                self._set(ComponentHealth(name=name, state="starting"))
                group.create_task(self._keep_alive(name, factory), name=f"supervised:{name}")

    async def _keep_alive(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            recovered = asyncio.get_running_loop().call_later(
                0 if attempt == 0 else self.stable_after_s, self._mark_ok, name
            )
            try:
                await factory()
            except Exception as exc:  # the whole point: one part's bug is contained
                recovered.cancel()
                if time.monotonic() - started >= self.stable_after_s:
                    attempt = 0
                delay = backoff_delay(attempt, self.restart_min_s, self.restart_max_s)
                attempt += 1
                self._crashed(name, exc, delay)
                await asyncio.sleep(delay)
                continue
            finally:
                recovered.cancel()
            self._set(replace(self._health[name], state="stopped", since=time.monotonic()))
            return

    def _crashed(self, name: str, exc: Exception, delay: float) -> None:
        logger.error(
            "component failed; restarting",
            exc_info=exc,
            extra={"component": name, "restart_in_s": round(delay, 2)},
        )
        previous = self._health[name]
        self._set(
            replace(
                previous,
                state="degraded",
                restarts=previous.restarts + 1,
                last_error=f"{type(exc).__name__}: {exc}"[:200],
                since=time.monotonic(),
            )
        )

    def _mark_ok(self, name: str) -> None:
        current = self._health[name]
        if current.state != "ok":
            self._set(replace(current, state="ok", since=time.monotonic()))

    def _set(self, health: ComponentHealth) -> None:
        previous = self._health.get(health.name)
        self._health[health.name] = health
        if self._on_change is not None and (previous is None or previous.state != health.state):
            try:
                self._on_change(health)
            except Exception:
                logger.exception("health listener failed", extra={"component": health.name})
