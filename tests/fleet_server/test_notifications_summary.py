"""The daily summary e-mail: a real SMTP server with STARTTLS and login; the summary
reaches the targets that asked for it once for the day, with their site's figures only,
and neither a second server nor a restart sends it again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import Alert, CallRecord, Device, NotificationDelivery, NotificationTarget
from fleet_server.mqtt.notify import summary
from fleet_server.mqtt.notify.quiet import PARIS
from fleet_server.mqtt.notify.worker import DeliveryWorker
from tests.fleet_server.test_notifications import add_target, notify_settings
from tests.support.notify_servers import SMTP_USER, SmtpServer, smtp_server
from tests.support.webapp import WebApp, running_app

SITE_A, SITE_B = "Monts de Châlus", "Vallée de la Gorre"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path / "smtp") as server:
        yield server


def _fleet(web: WebApp, yesterday: datetime) -> None:
    """Two sites: one counter down in each (and one up in A), three open alerts, and the
    calls of yesterday, today and the day before (Paris time)."""
    now = datetime.now(UTC)
    with web.sessions.begin() as session:
        session.add_all(
            [
                Device(id="dev-a", site=SITE_A, name="Mairie de Châlus", state="offline",
                       state_since=now - timedelta(hours=2)),
                Device(id="dev-a2", site=SITE_A, name="Mairie de Bussière", state="online"),
                Device(id="dev-b", site=SITE_B, name="Mairie de Cognac", state="silent",
                       state_since=now - timedelta(hours=1)),
            ]
        )  # fmt: skip
        session.flush()
        session.add_all(
            [
                Alert(device_id="dev-a", kind="offline", detail="hors ligne", raised_at=now),
                Alert(device_id="dev-a2", kind="printer", detail="papier", raised_at=now),
                Alert(device_id="dev-b", kind="silent", detail="muet", raised_at=now),
                Alert(device_id="dev-b", kind="disk", detail="", raised_at=now, cleared_at=now),
            ]
        )
        calls = [
            ("dev-a", SITE_A, yesterday, True),
            ("dev-a2", SITE_A, yesterday + timedelta(hours=3), False),
            ("dev-b", SITE_B, yesterday, True),
            ("dev-a", SITE_A, yesterday + timedelta(days=1), True),  # today
            ("dev-a", SITE_A, yesterday - timedelta(days=1), True),  # the day before
        ]
        session.add_all(
            CallRecord(id=uuid.uuid4(), device_id=d, site=s, service="caf", requested_at=at,
                       answered_at=at + timedelta(seconds=20) if answered else None)
            for d, s, at, answered in calls
        )  # fmt: skip


@pytest.fixture
def app(db_url: str, smtp: SmtpServer) -> Iterator[WebApp]:
    # Hour 0: the summary is due whatever the time of the run.
    with running_app(db_url, **notify_settings(smtp), notify_summary_hour=0) as web:
        web.add_user()
        today = datetime.now(PARIS).date()
        _fleet(web, datetime.combine(today - timedelta(days=1), time(10), PARIS))
        yield web


def test_the_summary_arrives_once_with_the_sites_figures(app: WebApp, smtp: SmtpServer) -> None:
    token = app.token()
    alice = add_target(app, token, channel="email", address="alice@pays.example",
                       site=SITE_A, summary=True)  # fmt: skip
    add_target(app, token, channel="email", address="bob@pays.example", summary=True)
    add_target(app, token, channel="email", address="carol@pays.example", site=SITE_A)
    assert alice["summary"] is True
    smtp.inbox.wait_for(lambda got: len(got) >= 2)
    assert sorted(m.rcpt_tos[0] for m in smtp.inbox.messages) == [
        "alice@pays.example",
        "bob@pays.example",
    ]
    assert all(m.tls and m.login == SMTP_USER for m in smtp.inbox.messages)
    today = datetime.now(PARIS).date()

    (to_alice,) = smtp.inbox.to("alice@pays.example")
    message = to_alice.message
    assert message["Subject"] == f"[Guichet Proche] Résumé du {today:%d/%m/%Y} — {SITE_A}"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_content().replace("\r\n", "\n")
    assert "Guichets hors service : 1\n  - Mairie de Châlus : hors ligne depuis le" in text
    assert "Alertes ouvertes : 2" in text
    assert "Imprimante en erreur — Mairie de Bussière" in text
    yesterday = today - timedelta(days=1)
    assert f"Appels d'hier ({yesterday:%d/%m/%Y}) : 2 demandés, 1 décrochés" in text
    assert "Cognac" not in text  # another site's counter

    bob = smtp.inbox.to("bob@pays.example")[0].message.get_content().replace("\r\n", "\n")
    assert "Guichets hors service : 2" in bob
    assert "Mairie de Cognac (Vallée de la Gorre) : silencieux" in bob
    assert "Alertes ouvertes : 3" in bob
    assert "3 demandés, 2 décrochés" in bob

    # A restart, or a second server: queuing again adds nothing, a fresh worker sends nothing.
    for _ in range(2):
        with app.sessions.begin() as session:
            assert summary.enqueue_due(session, 0, datetime.now(UTC)) == 0

    async def second_worker() -> int:
        async with httpx.AsyncClient() as client:
            return await DeliveryWorker(app.sessions, app.settings).run_once(client)

    assert asyncio.run(second_worker()) == 0
    with app.sessions() as session:
        rows = session.scalars(
            select(NotificationDelivery).where(NotificationDelivery.event == "summary")
        ).all()
    assert len(rows) == 2
    assert all(r.status == "sent" and r.attempts == 1 for r in rows)
    assert len(smtp.inbox.messages) == 2
    assert app.login().status_code == 303
    page = app.client.get("/admin/notifications").text  # the log names it
    assert "Résumé quotidien" in page


def _count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(NotificationDelivery)) or 0


def test_queued_from_its_hour_once_per_target_and_day(sessions: sessionmaker[Session]) -> None:
    created = datetime(2027, 3, 1, tzinfo=UTC)
    with sessions.begin() as session:
        for address, channel, wanted in (
            ("a@pays.example", "email", True),
            ("b@pays.example", "email", False),
            ("https://hooks.example/x", "webhook", True),  # never for a webhook
        ):
            session.add(NotificationTarget(channel=channel, address=address, label="", site="",
                                           kinds=[], digest=False, summary=wanted, active=True,
                                           created_at=created))  # fmt: skip
    before = datetime(2027, 3, 15, 6, 59, tzinfo=PARIS)
    for now, expected in (
        (before, 0),
        (before + timedelta(minutes=1), 1),  # 07:00 Paris
        (before + timedelta(hours=12), 1),  # later the same day: the same row
        (before + timedelta(days=1, minutes=1), 2),  # the next morning
    ):
        with sessions.begin() as session:
            summary.enqueue_due(session, 7, now)
        assert _count(sessions) == expected, now
    with sessions() as session:
        days = session.scalars(select(NotificationDelivery.alert_id)).all()
    assert sorted(days) == [20270315, 20270316]
