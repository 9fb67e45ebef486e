"""Every counter's retained ``config`` message: its next days' schedule, the questionnaire and
whether its screens are said aloud (the counter page's choice; None: the counter's own).

The counter shows what its button does (open services, appointment, next openings) from
this message alone, so it stays right while the server is unreachable. One ``ConfigPusher``
per web process, started by ``create_app``'s lifespan:

- :func:`request_push` (from any request handler, any thread) asks for some counters' (or
  all) configs to be published again; requests arriving together are merged; the named
  counters, if connected for calls, also get a fresh ``welcome`` (their button's service);
- every ``settings.config_refresh_s``, and at start-up, every counter's config is
  republished, so the horizon keeps moving and a change missed while the broker was away
  catches up.

Publication goes through the ingest's MQTT client (``Ingest.publish_config``: QoS 1,
retained). ``version`` is the publication time in milliseconds, bumped past the previous
version of that counter if the clock has not moved on: the counter applies only a newer
version than the one it has.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.db import in_thread
from fleet_server.models import Device, QuestionnaireVersion
from fleet_server.scheme.schedules import ScheduleOptions, counter_schedule
from fleet_server.settings import Settings
from guichet import contract
from guichet.contract import utcnow
from guichet.questionnaire import Question, Questionnaire

if TYPE_CHECKING:
    from fleet_server.calls.manager import CallManager
    from fleet_server.mqtt.ingest import Ingest

logger = logging.getLogger(__name__)

CONNECT_WAIT_S = 5.0  # at start-up the ingest is still connecting: wait this long for it
CONNECT_POLL_S = 0.1
RETRY_S = 10.0  # a push that could not be published (broker away) is retried this often
BATCH_DEVICES = 200  # counters read per database session during a full refresh


class PushContext(Protocol):
    """What the pusher needs of the running app (the web layer's ``AppContext`` is one)."""

    settings: Settings
    sessions: sessionmaker[Session]
    calls: CallManager
    ingest: Ingest | None
    config_pusher: ConfigPusher | None


class ConfigPusher:
    """Publishes counters' configs when asked and periodically (see the module doc)."""

    def __init__(self, ctx: PushContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._pending_all = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._versions: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0  # configs handed to the broker since start (tests, metrics)
        self.rounds = 0  # pushes completed since start, the one at start-up included

    # --- lifetime -------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self._work_forever(), name="config-push"),
            asyncio.create_task(self._refresh_forever(), name="config-refresh"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # --- requests -------------------------------------------------------------------------

    def request(self, device_ids: Collection[str] | None = None) -> None:
        """Schedule a push of these counters' configs (None: all); never blocks."""
        with self._lock:
            if device_ids is None:
                self._pending_all = True
            else:
                self._pending.update(device_ids)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:  # a synchronous route runs in a worker thread
            loop.call_soon_threadsafe(self._wake.set)

    def _take(self) -> tuple[bool, set[str]]:
        with self._lock:
            everything, ids = self._pending_all, self._pending
            self._pending_all, self._pending = False, set()
        return everything, ids

    def _put_back(self, everything: bool, ids: set[str]) -> None:
        with self._lock:
            self._pending_all = self._pending_all or everything
            self._pending |= ids

    # --- work -----------------------------------------------------------------------------

    async def _refresh_forever(self) -> None:
        while True:
            self.request(None)
            await asyncio.sleep(self._ctx.settings.config_refresh_s)

    async def _work_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            everything, ids = self._take()
            if not everything and not ids:
                continue
            try:
                done = await self._push(None if everything else ids)
            except Exception:  # never let the task die: log and retry later
                logger.exception("config push failed; retrying in %.0f s", RETRY_S)
                done = False
            if not done:
                self._put_back(everything, ids)
                await self._retry_later()
                continue
            self.rounds += 1
            for device_id in sorted(ids):  # connected counters' idle screens follow at once
                await self._ctx.calls.send_welcome(device_id)

    async def _retry_later(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), RETRY_S)
        except TimeoutError:
            self._wake.set()

    async def _push(self, device_ids: set[str] | None) -> bool:
        """Publish now; False when the broker is not connected (nothing was sent)."""
        ingest = self._ctx.ingest
        if ingest is None:
            logger.debug("no MQTT ingest: counters' configs are not published")
            return True  # nothing will ever send them: do not retry
        if not await _connected(ingest):
            logger.info("broker not connected; counters' configs will be published later")
            return False
        count = await in_thread(self._publish_all, device_ids)  # stop() waits for it
        logger.info("counters' configs published", extra={"count": count})
        return True

    def _publish_all(self, device_ids: set[str] | None) -> int:
        ingest = self._ctx.ingest
        if ingest is None:
            return 0
        ids = self._targets(device_ids)
        count = 0
        for start in range(0, len(ids), BATCH_DEVICES):
            with self._ctx.sessions() as session:
                now = utcnow()
                questionnaire = latest_questionnaire(session)
                for device_id in ids[start : start + BATCH_DEVICES]:
                    config = self.build(session, device_id, now, questionnaire)
                    if config is None:
                        continue
                    ingest.publish_config(device_id, config)
                    count += 1
        self.published += count
        return count

    def _targets(self, device_ids: set[str] | None) -> list[str]:
        with self._ctx.sessions() as session:
            query = select(Device.id).where(Device.revoked_at.is_(None)).order_by(Device.id)
            if device_ids is not None:
                query = query.where(Device.id.in_(sorted(device_ids)))
            found = list(session.scalars(query))
        valid = [d for d in found if contract.is_valid_device_id(d)]
        if len(valid) != len(found):
            invalid = len(found) - len(valid)
            logger.warning("counters with invalid ids get no config", extra={"count": invalid})
        return valid

    def build(
        self,
        session: Session,
        device_id: str,
        now: datetime,
        questionnaire: Questionnaire | None,
    ) -> contract.DeviceConfig | None:
        """One counter's config, with a version newer than any it was sent before."""
        options = schedule_options(self._ctx.settings)
        schedule = counter_schedule(session, device_id, now, options)
        if schedule is None:
            return None
        version = max(int(now.timestamp() * 1000), self._versions.get(device_id, 0) + 1)
        self._versions[device_id] = version
        device = session.get(Device, device_id)
        return contract.DeviceConfig(
            version=version,
            issued_at=now,
            schedule=schedule,
            questionnaire=questionnaire,
            speech=device.speech if device is not None else None,
        )


async def _connected(ingest: Ingest) -> bool:
    """Whether the ingest is (or within CONNECT_WAIT_S becomes) connected; never blocks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_WAIT_S
    while not ingest.wait_connected(0):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(CONNECT_POLL_S)
    return True


def schedule_options(settings: Settings) -> ScheduleOptions:
    """How every counter's schedule is built and read, from the server's settings."""
    return ScheduleOptions(
        tolerance_min=settings.appointment_tolerance_min, phone=settings.closed_phone
    )


def latest_questionnaire(session: Session) -> Questionnaire | None:
    """The newest questionnaire version as the counters read it (None: none is valid)."""
    row = session.scalars(
        select(QuestionnaireVersion).order_by(QuestionnaireVersion.version.desc()).limit(1)
    ).first()
    if row is None:
        return None
    try:
        questions: Sequence[Question] = [Question.model_validate(q) for q in row.questions]
        return Questionnaire(
            version=row.version,
            questions=list(questions),
            timeout_s=row.timeout_s,
            spoken=row.spoken,
        )
    except ValidationError:
        logger.exception("questionnaire version %d is not valid; not sent", row.version)
        return None


def request_push(ctx: PushContext, device_ids: Collection[str] | None = None) -> None:
    """Publish these counters' retained configs again soon (None: every counter).

    Non-blocking and safe from any request handler (async or sync). Without a running pusher
    (app not started, or no MQTT ingest) it only logs: the periodic refresh catches up.
    """
    pusher = ctx.config_pusher
    if pusher is None:
        wanted = "all" if device_ids is None else ",".join(sorted(device_ids))
        logger.info("config push requested but not running", extra={"device_ids": wanted})
        return
    pusher.request(None if device_ids is None else list(device_ids))
