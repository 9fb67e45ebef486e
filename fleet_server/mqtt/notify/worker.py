"""The delivery worker: sends the outbox's due deliveries, records each try.

Every ``notify_poll_s`` it claims the due pending rows (a lease in ``locked_until``, so two
servers never send the same row at once, and a crashed one's rows come back when the lease
ends), sends them — e-mail one message per alert, or one digest per recipient when it
gathers alerts or after quiet hours, the daily summary on its own; webhooks one signed POST
per alert —, then records the outcome: sent, or tried again after a doubling delay, or
given up after the last attempt. Each pass first queues today's summaries once their hour
has come (:mod:`.summary`; one row per target and day, whoever queues it first).
A message the relay accepted just before a crash is sent again after the lease (at least
once, never lost); webhook receivers dedupe with ``X-Guichet-Delivery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.db import in_thread
from fleet_server.models import NotificationDelivery, NotificationTarget
from fleet_server.mqtt.notify import mail, summary, webhook
from fleet_server.mqtt.notify.quiet import PARIS
from fleet_server.mqtt.notify.vocab import AlertEvent, Channel, DeliveryStatus
from fleet_server.settings import Settings
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

CLAIM_LIMIT = 200  # deliveries per pass; more wait for the next one
CONCURRENT_SENDS = 8  # messages and POSTs in flight at once
LEASE_MARGIN_S = 60.0  # a claim outlives the slowest send by this much
JITTER = 0.2  # retry delays vary by up to +20 %, so failed rows do not all come back at once

D = NotificationDelivery
_deliveries: Table = NotificationDelivery.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Job:
    """One message or POST: the target and the deliveries it carries."""

    target: NotificationTarget
    deliveries: list[NotificationDelivery]
    digest: bool = False
    summary: bool = False  # the daily summary (:mod:`.summary`), one delivery


@dataclass(frozen=True)
class Outcome:
    job: Job
    error: str | None  # None: delivered


def retry_delay(settings: Settings, attempts: int) -> float:
    """Seconds before try ``attempts + 1``: base × 2^(attempts-1), capped, with jitter."""
    delay: float = settings.notify_retry_base_s * 2.0 ** max(attempts - 1, 0)
    return min(delay, settings.notify_retry_max_s) * (1 + random.uniform(0, JITTER))


def claim(sessions: sessionmaker[Session], now: datetime, lease: timedelta) -> list[Job]:
    """Take the due pending deliveries (lease), grouped into jobs."""
    free = or_(D.locked_until.is_(None), D.locked_until < now)
    with sessions.begin() as session:
        due = session.scalars(
            select(D.id)
            .where(D.status == DeliveryStatus.PENDING, D.next_attempt_at <= now, free)
            .order_by(D.next_attempt_at, D.id)
            .limit(CLAIM_LIMIT)
        ).all()
        if not due:
            return []
        mine = session.scalars(
            update(D)
            .where(D.id.in_(due), D.status == DeliveryStatus.PENDING, free)
            .values(locked_until=now + lease)
            .returning(D.id)
        ).all()
        rows = session.execute(
            select(D, NotificationTarget)
            .join(NotificationTarget, NotificationTarget.id == D.target_id)
            .where(D.id.in_(mine))
            .order_by(D.at, D.id)
        ).all()
    by_target: dict[int, list[NotificationDelivery]] = defaultdict(list)
    targets: dict[int, NotificationTarget] = {}
    for delivery, target in rows:
        by_target[target.id].append(delivery)
        targets[target.id] = target
    return [job for tid, ds in by_target.items() for job in _jobs(targets[tid], ds)]


def _jobs(target: NotificationTarget, deliveries: list[NotificationDelivery]) -> list[Job]:
    """A webhook: one POST per delivery. E-mail: one digest when the recipient asked for
    digests or quiet hours held some, else one message per alert."""
    summaries = [Job(target, [d], summary=True) for d in deliveries if _is_summary(d)]
    deliveries = [d for d in deliveries if not _is_summary(d)]
    grouped = target.digest or any(d.held for d in deliveries)
    if target.channel == Channel.EMAIL and grouped and len(deliveries) > 1:
        return [*summaries, Job(target, deliveries, digest=True)]
    return [*summaries, *(Job(target, [d]) for d in deliveries)]


def _is_summary(d: NotificationDelivery) -> bool:
    return d.event == AlertEvent.SUMMARY


def record(
    sessions: sessionmaker[Session], settings: Settings, outcomes: list[Outcome], now: datetime
) -> None:
    """Write each delivery's outcome and release its lease."""
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        for d in outcome.job.deliveries:
            attempts = d.attempts + 1
            row: dict[str, Any] = {
                "b_id": d.id,
                "attempts": attempts,
                "status": DeliveryStatus.SENT,
                "sent_at": now,
                "next_attempt_at": d.next_attempt_at,
                "last_error": d.last_error,  # a success keeps the last failure, for the log
            }
            if outcome.error is not None:
                last = attempts >= settings.notify_max_attempts
                row["status"] = DeliveryStatus.FAILED if last else DeliveryStatus.PENDING
                row["sent_at"] = None
                row["last_error"] = outcome.error
                if not last:
                    delay = retry_delay(settings, attempts)
                    row["next_attempt_at"] = now + timedelta(seconds=delay)
            rows.append(row)
    if not rows:
        return
    stmt = (
        update(_deliveries)
        .where(_deliveries.c.id == bindparam("b_id"))
        .values(
            attempts=bindparam("attempts"),
            status=bindparam("status"),
            sent_at=bindparam("sent_at"),
            next_attempt_at=bindparam("next_attempt_at"),
            last_error=bindparam("last_error"),
            locked_until=None,
        )
    )
    with sessions.begin() as session:
        session.connection().execute(stmt, rows)


class DeliveryWorker:
    """Claims, sends and records, every ``notify_poll_s``, while the server runs."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings
        slowest = max(settings.smtp_timeout_s, settings.webhook_timeout_s)
        self._lease = timedelta(seconds=2 * slowest + LEASE_MARGIN_S)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look now rather than at the next period (a target was just added, a test)."""
        self._wake.set()

    async def run_forever(self) -> None:
        timeout = httpx.Timeout(self._settings.webhook_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            while True:
                try:
                    await self.run_once(client)
                except Exception:  # a database hiccup: logged, tried again next period
                    logger.exception("notification deliveries failed; retrying next period")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.notify_poll_s)

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """One pass (today's summaries queued once their hour has come); the number of
        deliveries tried."""
        await in_thread(self._queue_summaries, utcnow())
        jobs = await in_thread(claim, self._sessions, utcnow(), self._lease)
        if not jobs:
            return 0
        limit = asyncio.Semaphore(CONCURRENT_SENDS)

        async def bounded(job: Job) -> Outcome:
            async with limit:
                return await self._send(client, job)

        outcomes = list(await asyncio.gather(*(bounded(job) for job in jobs)))
        await in_thread(record, self._sessions, self._settings, outcomes, utcnow())
        failed = sum(1 for o in outcomes if o.error is not None)
        logger.info("notifications: %d sent, %d failed", len(outcomes) - failed, failed)
        return sum(len(job.deliveries) for job in jobs)

    def _queue_summaries(self, now: datetime) -> None:
        with self._sessions.begin() as session:
            summary.enqueue_due(session, self._settings.notify_summary_hour, now)

    def _figures(self, job: Job) -> summary.Figures:
        day = job.deliveries[0].at.astimezone(PARIS).date()
        with self._sessions() as session:
            return summary.figures(session, job.target.site, day)

    async def _send(self, client: httpx.AsyncClient, job: Job) -> Outcome:
        target = job.target
        try:
            if job.summary:
                figures = await in_thread(self._figures, job)
                message = mail.summary_message(figures, self._settings.smtp_from, target.address)
                await mail.send(self._settings, message)
            elif target.channel == Channel.WEBHOOK:
                secret = target.secret or ""
                await webhook.post(client, target.address, secret, job.deliveries[0], utcnow())
            else:
                await mail.send(self._settings, self._message(job))
        except mail.DeliveryError as exc:
            logger.warning("notification not delivered: %s", exc, extra={"target_id": target.id})
            return Outcome(job, str(exc))
        return Outcome(job, None)

    def _message(self, job: Job) -> EmailMessage:
        sender, to = self._settings.smtp_from, job.target.address
        if job.digest:
            quiet = any(d.held for d in job.deliveries)
            return mail.digest_message(job.deliveries, sender, to, quiet=quiet)
        return mail.one_message(job.deliveries[0], sender, to)
