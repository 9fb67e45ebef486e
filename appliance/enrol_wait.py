"""What the technician sees while the counter enrols: its screen, its light, and the card.

``EnrolmentDisplay.report`` is the callback ``enrol.enrol`` calls at each step:

- asking, or the fleet server unreachable: the enrolment screen says so (light: FAULT when
  unreachable, WAITING otherwise);
- pending: "En attente de l'accord du Pays — guichet « … », code …", the code the
  administrator sees beside the request on ``/admin/enrolment`` (light: WAITING);
- refused: the French message and what to do, on the screen and in ``GUICHET-ERREUR.txt``
  written into the agent's data directory — the only place its sandbox may write — from
  where ``guichet-erreur-carte.path`` has it copied onto the card by a root helper
  (``python -m appliance.firstboot --erreur-agent``); light: FAULT;
- enrolled: the data directory's copy is removed (the card's goes when ``guichet.toml``
  is applied again).

Every step is also logged once as ``enrolment screen`` with its one-line ``text``, so the
journal (and the image check, on the serial console) reads what the screen says.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Final

from appliance import enrol
from appliance.config import ApplianceConfig
from appliance.enrol import EnrolmentStatus
from appliance.hw.ports import LightPattern, Screen, ScreenState, StatusLight
from appliance.hw.screen_pygame import texts

logger = logging.getLogger(__name__)

ERROR_FILE: Final = "GUICHET-ERREUR.txt"  # the same name first boot uses on the card
ERROR_TITLE: Final = "*** GUICHET PROCHE : LE GUICHET NE PEUT PAS ÊTRE MIS EN SERVICE ***"


def error_file_text(message: str) -> str:
    """The card's file: a title, the message, CRLF line ends (read on Windows too)."""
    return "\r\n".join([ERROR_TITLE, *message.splitlines()]) + "\r\n"


class EnrolmentDisplay:
    """Shows enrolment's progress on one counter's screen and light."""

    def __init__(self, config: ApplianceConfig, screen: Screen, light: StatusLight) -> None:
        self.counter = texts.counter_label(config.device.name, config.device.site)
        self.screen = screen
        self.light = light
        self.error_path = config.device.data_dir / ERROR_FILE
        self.last_text = ""

    def report(self, status: EnrolmentStatus) -> None:
        if status.step == "refused":
            self._show(ScreenState.ENROLMENT_REFUSED, LightPattern.FAULT, status.message)
            _write_error(self.error_path, status.message)
            return
        if status.step == "enrolled":
            self.error_path.unlink(missing_ok=True)
            return
        if status.step == "pending":
            self.error_path.unlink(missing_ok=True)
            self.screen.show(ScreenState.ENROLMENT, counter=self.counter, code=status.code)
            self.light.show(LightPattern.WAITING)
            self._log(texts.enrolment_summary(self.counter, status.code))
            return
        reason = status.message if status.step == "unreachable" else texts.ENROLMENT_ASKING
        light = LightPattern.FAULT if status.step == "unreachable" else LightPattern.WAITING
        self.screen.show(ScreenState.ENROLMENT, counter=self.counter, reason=reason)
        self.light.show(light)
        self._log(texts.enrolment_summary(self.counter, reason=reason))

    def _show(self, state: ScreenState, light: LightPattern, message: str) -> None:
        self.screen.show(state, reason=message)
        self.light.show(light)
        self._log(f"{texts.ENROLMENT_REFUSED} — guichet « {self.counter} » : " + " ".join(
            message.splitlines()
        ))  # fmt: skip

    def _log(self, text: str) -> None:
        if text != self.last_text:
            logger.warning("enrolment screen", extra={"text": text})
            self.last_text = text


async def enrol_until_stopped(
    config: ApplianceConfig,
    screen: Screen,
    light: StatusLight,
    stop: asyncio.Event,
    poll_interval_s: float = enrol.POLL_INTERVAL_S,
) -> ApplianceConfig | None:
    """The configuration with its credentials — stored ones, or enrolled now (as long as it
    takes) when a token is configured; None when the counter must not serve: ``stop`` was
    set, or enrolment was refused (the refusal then stays shown until ``stop``)."""
    creds = await asyncio.to_thread(enrol.load_credentials, config)
    if not enrol.needs_enrolment(config, creds):
        return config if creds is None else enrol.apply_credentials(config, creds)
    display = EnrolmentDisplay(config, screen, light)
    enrolling = asyncio.create_task(
        enrol.enrol(config, poll_interval_s=poll_interval_s, report=display.report)
    )
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({enrolling, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (enrolling, stopping):
            task.cancel()
        await asyncio.gather(enrolling, stopping, return_exceptions=True)
    if enrolling.cancelled():
        return None
    try:
        creds = enrolling.result()
    except enrol.EnrolmentRefusedError:
        await stop.wait()
        return None
    logger.info("counter enrolled")
    return enrol.apply_credentials(config, creds)


def _write_error(path: Path, message: str) -> None:
    """Into the data directory (0644: the root helper and the technician's SSH may read it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partiel")
        tmp.write_text(error_file_text(message), encoding="utf-8", newline="")
        tmp.chmod(0o644)
        tmp.replace(path)
    except OSError as exc:
        logger.error("cannot write the enrolment error file", extra={"error": str(exc)})
