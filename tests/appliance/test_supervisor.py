"""The supervisor restarts a failing part, reports it degraded, and never eats cancellation;
plus the backoff curve and the sd_notify client."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from appliance import sdnotify
from appliance.supervisor import ComponentHealth, Supervisor, backoff_delay


def test_backoff_stays_within_bounds_and_grows() -> None:
    for attempt in range(40):
        delay = backoff_delay(attempt, 1.0, 60.0)
        assert 1.0 <= delay <= min(60.0, 2.0**attempt)
    assert max(backoff_delay(10, 1.0, 60.0) for _ in range(200)) > 30  # jitter spreads widely
    assert backoff_delay(0, 1.0, 60.0) == 1.0


async def test_a_crashing_component_is_restarted_and_reported() -> None:
    changes: list[ComponentHealth] = []
    runs = 0
    recovered = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError(f"boom {runs}")
        recovered.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(
        restart_min_s=0.01, restart_max_s=0.02, stable_after_s=0.05, on_change=changes.append
    )
    task = asyncio.create_task(supervisor.run({"flaky": flaky}))
    await asyncio.wait_for(recovered.wait(), 5)
    health = supervisor.health["flaky"]
    assert health.restarts == 2
    assert health.last_error == "RuntimeError: boom 2"
    assert "degraded" in [c.state for c in changes]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_component_that_returns_is_stopped_not_restarted() -> None:
    supervisor = Supervisor()
    await asyncio.wait_for(supervisor.run({"once": _noop}), 5)
    assert supervisor.health["once"].state == "stopped"


async def _noop() -> None:
    return None


async def test_cancellation_inside_a_component_is_not_swallowed() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(restart_min_s=0.01)
    task = asyncio.create_task(supervisor.run({"forever": forever}))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert supervisor.health["forever"].restarts == 0


def test_sd_notify_sends_a_datagram(tmp_path: Path) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": address})
        assert server.recv(64) == b"READY=1"


def test_sd_notify_is_a_no_op_outside_systemd() -> None:
    assert not sdnotify.notify("READY=1", env={})
    assert sdnotify.watchdog_interval_s({}) is None


def test_watchdog_interval_is_half_the_period() -> None:
    env = {"NOTIFY_SOCKET": "@guichet", "WATCHDOG_USEC": "20000000"}
    assert sdnotify.watchdog_interval_s(env) == 10.0
    assert sdnotify.watchdog_interval_s({**env, "WATCHDOG_PID": "1"}) is None
