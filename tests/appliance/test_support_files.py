"""Remote support's files on the counter (issue 14, items 2 and 3): the screenshot is a PNG
of what the real pygame renderer draws, and is refused while a citizen is in a call — asked
before, and checked again by the renderer at the moment it draws; the logs are the counter's
own JSON lines of the last minutes (the in-memory ring, or journalctl under systemd)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import stat
import time
import uuid
from pathlib import Path

import pygame
import pytest

from appliance.errors import HardwareError, ScreenshotRefusedError
from appliance.fleet.commands import CommandHandler
from appliance.fleet.settings import RuntimeSettings
from appliance.hw.journal import JournalctlLogs
from appliance.hw.ports import ScreenState
from appliance.hw.ports.levels import SimulatedBacklight, SimulatedVolume
from appliance.hw.ports.logs import RingLogs
from appliance.hw.ports.screen import SimulatedScreen
from appliance.hw.ports.system import SimulatedSystemPower
from appliance.hw.screen_pygame.adapter import PygameScreen
from appliance.remote_actions import RemoteActions
from appliance.support_files import PRIVATE_SCREENS, SupportFiles
from guichet import contract
from guichet.logs import device_id_var
from tests.appliance.screen_helpers import SIZE, dominant, screen, shot

__all__ = ["screen"]  # the fixture


def command(name: str, **args: contract.Scalar) -> contract.Command:
    return contract.Command(request_id=uuid.uuid4(), at=contract.utcnow(), name=name, args=args)


def handler_with(support: SupportFiles, busy: str | None = None) -> CommandHandler:
    settings = RuntimeSettings(30)
    handler = CommandHandler(settings)

    async def no_checks() -> list:  # type: ignore[type-arg]
        return []

    RemoteActions(
        settings=settings,
        power=SimulatedSystemPower(),
        volume=SimulatedVolume(),
        backlight=SimulatedBacklight(),
        stop=lambda: None,
        busy=lambda: busy,
        run_checks=no_checks,
        emit=lambda kind, data: None,
        support=support,
    ).register(handler)
    return handler


def test_the_screenshot_is_a_png_of_what_the_renderer_draws(
    screen: PygameScreen, tmp_path: Path
) -> None:
    screen.show(ScreenState.IDLE, service="Caf — Allocations familiales")
    png = screen.png(refuse=PRIVATE_SCREENS)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = pygame.image.load(io.BytesIO(png), "screen.png")
    assert image.get_size() == SIZE
    pixels = pygame.surfarray.array3d(image).swapaxes(0, 1)
    assert dominant(pixels) == dominant(shot(screen, tmp_path / "same.png"))


@pytest.mark.parametrize("state", sorted(PRIVATE_SCREENS))
def test_the_renderer_refuses_while_a_citizen_s_screen_is_shown(
    screen: PygameScreen, state: ScreenState
) -> None:
    screen.show(state, service="Caf")
    with pytest.raises(ScreenshotRefusedError) as refused:
        screen.png(refuse=PRIVATE_SCREENS)
    assert refused.value.state == state.value
    screen.show(ScreenState.IDLE, service="Caf")  # the call over: the picture is taken again
    assert screen.png(refuse=PRIVATE_SCREENS).startswith(b"\x89PNG")


async def test_a_screenshot_is_refused_in_a_call_before_anything_is_drawn(
    screen: PygameScreen,
) -> None:
    draws = screen.draws
    support = SupportFiles(screen=screen, logs=None, uploader=None, busy=lambda: "en appel")
    ack = await handler_with(support, busy="en appel").handle(command("screenshot"))
    assert (ack.ok, ack.detail) == (
        False,
        "refusé : pas de capture d'écran pendant un appel (en appel)",
    )
    assert screen.draws == draws


async def test_the_renderer_s_own_refusal_reaches_the_ack(screen: PygameScreen) -> None:
    """The call began between the question and the picture: the renderer has the last word."""
    screen.show(ScreenState.IN_CALL)
    support = SupportFiles(screen=screen, logs=None, uploader=None, busy=lambda: None)
    support._uploader = object()  # type: ignore[assignment]  # never reached
    ack = await handler_with(support).handle(command("screenshot"))
    assert (ack.ok, ack.detail) == (
        False,
        "refusé : pas de capture d'écran pendant un appel (écran d'appel affiché)",
    )


async def test_without_a_capturing_screen_or_a_server_it_says_so() -> None:
    no_capture = SupportFiles(screen=SimulatedScreen(), logs=None, uploader=None, busy=lambda: None)
    ack = await handler_with(no_capture).handle(command("screenshot"))
    assert (ack.ok, ack.detail) == (False, "cet écran ne permet pas de capture")
    no_server = SupportFiles(screen=None, logs=RingLogs(), uploader=None, busy=lambda: None)
    ack = await handler_with(no_server).handle(command("fetch_logs", minutes=5))
    assert ack.ok is False
    assert ack.detail is not None
    assert "pas de serveur d'appel configuré" in ack.detail


@pytest.mark.parametrize("minutes", [0, -5, 1441, "30", True, 2.5])
async def test_minutes_outside_1_to_1440_are_refused(minutes: contract.Scalar) -> None:
    support = SupportFiles(screen=None, logs=RingLogs(), uploader=None, busy=lambda: None)
    ack = await handler_with(support).handle(command("fetch_logs", minutes=minutes))
    assert (ack.ok, ack.detail) == (False, "argument « minutes » : entier de 1 à 1440 attendu")


async def test_the_ring_keeps_the_json_lines_of_the_last_minutes() -> None:
    ring = RingLogs(capacity=3).install()
    log = logging.getLogger("appliance.test_ring")
    log.setLevel(logging.INFO)
    token = device_id_var.set("monts-de-chalus")
    try:
        for i in range(4):
            log.info("line %d", i, extra={"n": i})
    finally:
        device_id_var.reset(token)
        ring.uninstall()
    log.info("after uninstall")
    lines = [json.loads(line) for line in await ring.recent(5)]
    assert [(e["msg"], e["n"], e["device_id"]) for e in lines] == [
        ("line 1", 1, "monts-de-chalus"),
        ("line 2", 2, "monts-de-chalus"),
        ("line 3", 3, "monts-de-chalus"),
    ]
    old = logging.makeLogRecord({"msg": "old", "levelno": 20, "levelname": "INFO"})
    old.created = time.time() - 600
    ring.emit(old)
    assert [json.loads(line)["msg"] for line in await ring.recent(5)][-1] == "line 3"
    assert "old" in [json.loads(line)["msg"] for line in await ring.recent(11)]


def fake_journalctl(tmp_path: Path, lines: list[str], code: int = 0) -> Path:
    """A ``journalctl`` that records its arguments and prints ``lines`` (no journal here)."""
    script = tmp_path / "journalctl"
    argv_file = tmp_path / "argv"
    out = tmp_path / "out"
    out.write_text("".join(f"{line}\n" for line in lines))
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv_file}\ncat {out}\n'
        + (f'echo "Failed to open journal" >&2\nexit {code}\n' if code else "")
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_journalctl_reads_the_unit_s_messages_since_the_minutes_asked(
    tmp_path: Path,
) -> None:
    entries = ['{"ts": "t", "level": "info", "msg": "a"}', "", "plain stderr line"]
    logs = JournalctlLogs(journalctl=str(fake_journalctl(tmp_path, entries)))
    assert await logs.recent(30) == [entries[0], entries[2]]
    argv = (tmp_path / "argv").read_text().split("\n")
    assert argv[:-1] == [
        "--no-pager", "-q", "-u", "guichet.service", "-o", "cat", "--since", "-30min",
    ]  # fmt: skip


async def test_an_unreadable_journal_is_a_french_refusal(tmp_path: Path) -> None:
    failing = JournalctlLogs(journalctl=str(fake_journalctl(tmp_path, [], code=1)))
    with pytest.raises(HardwareError, match="journal illisible : Failed to open journal"):
        await failing.recent(5)
    with pytest.raises(HardwareError, match="journalctl absent"):
        await JournalctlLogs(journalctl=str(tmp_path / "nowhere")).recent(5)


async def test_the_real_journalctl_answers_or_says_why() -> None:
    """This machine's own journalctl (no systemd running here: empty, or a reason)."""
    if not os.access("/usr/bin/journalctl", os.X_OK):
        pytest.fail("journalctl is part of the test image")
    outcome: list[str] | str
    try:
        outcome = await asyncio.wait_for(JournalctlLogs(unit="guichet-none.service").recent(1), 30)
    except HardwareError as exc:
        outcome = str(exc)
    assert outcome == [] or str(outcome).startswith("journal illisible")
