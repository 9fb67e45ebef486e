"""Notifications of alerts: a real SMTP server with STARTTLS and login, a real webhook
receiver; alerts raised and cleared by the real health check reach the right recipients
once each, in French; a failing receiver is retried and the delivery log shows it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from fleet_server.models import AuditEntry, Device, NotificationDelivery
from fleet_server.mqtt import health
from fleet_server.mqtt.notify import outbox
from fleet_server.mqtt.notify.quiet import PARIS, quiet_until
from fleet_server.mqtt.notify.vocab import AlertEvent
from fleet_server.mqtt.notify.webhook import SIGNATURE_HEADER
from tests.support.notify_servers import (
    SMTP_PASSWORD,
    SMTP_USER,
    SmtpServer,
    WebhookReceiver,
    eventually,
    smtp_server,
    webhook_receiver,
)
from tests.support.webapp import WebApp, running_app

SITE_A, SITE_B = "Monts de Châlus", "Vallée de la Gorre"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as r:
        yield r


def notify_settings(smtp: SmtpServer, password: str = SMTP_PASSWORD) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_security": "starttls",
        "smtp_username": SMTP_USER,
        "smtp_password": password,
        "smtp_from": "Guichet Proche <alertes@pays.example>",
        "smtp_ca_file": smtp.ca_file,
        "notify_poll_s": 0.1,
        "notify_retry_base_s": 0.05,
        "notify_retry_max_s": 0.2,
        "notify_digest_min": 0,
    }


@pytest.fixture
def app(db_url: str, smtp: SmtpServer) -> Iterator[WebApp]:
    with running_app(db_url, **notify_settings(smtp)) as web:
        web.add_user()
        with web.sessions.begin() as session:
            session.add(Device(id="dev-a", site=SITE_A, name="Mairie de Châlus", state="online"))
            session.add(Device(id="dev-b", site=SITE_B, name="Mairie de Cognac", state="online"))
        yield web


def add_target(web: WebApp, token: str, **body: Any) -> dict[str, Any]:
    response = web.client.post(
        "/api/v1/notifications/targets", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def go(web: WebApp, device_id: str, state: str, now: datetime) -> None:
    """The counter changes state long enough ago, then the health check runs."""
    with web.sessions.begin() as session:
        session.execute(
            update(Device)
            .where(Device.id == device_id)
            .values(state=state, state_since=now - timedelta(hours=1))
        )
    with web.sessions.begin() as session:
        health.sync_presence_alerts(session, web.settings, now)


def verify(secret: str, header: str, body: bytes) -> bool:
    """The receiver's side, as docs/notifications.md shows it."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


def test_raised_and_cleared_reach_the_right_recipients_once_each(
    app: WebApp, smtp: SmtpServer, receiver: WebhookReceiver
) -> None:
    token = app.token()
    add_target(app, token, channel="email", address="alice@chalus.example", site=SITE_A)
    add_target(app, token, channel="email", address="bob@gorre.example", site=SITE_B)
    add_target(app, token, channel="email", address="carol@pays.example", kinds=["temperature"])
    hook = add_target(app, token, channel="webhook", address=receiver.url, site=SITE_A)
    receiver.fail_first[0] = 3  # the receiver is down for its first three requests

    now = datetime.now(UTC)
    go(app, "dev-a", "offline", now)
    smtp.inbox.wait_for(lambda got: len(got) >= 1)
    go(app, "dev-a", "online", now + timedelta(seconds=1))
    smtp.inbox.wait_for(lambda got: len(got) >= 2)
    receiver.wait_for(lambda hooks: sum(h.answered == 200 for h in hooks) >= 2)

    # E-mail: Alice only, once per event, in French, over STARTTLS with the relay's login.
    assert {m.rcpt_tos[0] for m in smtp.inbox.messages} == {"alice@chalus.example"}
    subjects = sorted(m.message["Subject"] for m in smtp.inbox.messages)
    assert subjects == [
        "[Guichet Proche] Alerte levée : Hors ligne — Mairie de Châlus, Monts de Châlus",
        "[Guichet Proche] Alerte ouverte : Hors ligne — Mairie de Châlus, Monts de Châlus",
    ]
    for m in smtp.inbox.messages:
        assert m.tls
        assert m.login == SMTP_USER
        text = m.message.get_content()
        assert "Guichet : Mairie de Châlus (dev-a)" in text
        assert "heure de Paris" in text
    assert smtp.inbox.logins_refused == 0

    # Webhook: three failures, then the raised event; then the cleared one; all signed.
    answered = [(json.loads(h.body)["event"], h.answered) for h in receiver.hooks]
    assert answered == [("alert.raised", 500)] * 3 + [("alert.raised", 200), ("alert.cleared", 200)]
    for h in receiver.hooks:
        assert verify(hook["secret"], h.headers[SIGNATURE_HEADER], h.body)
        assert not verify("gpw_another-secret", h.headers[SIGNATURE_HEADER], h.body)
    body = json.loads(receiver.hooks[-1].body)
    assert body["alert"]["site"] == SITE_A
    assert body["text"].startswith("Alerte levée : Hors ligne")

    def logged() -> list[dict[str, Any]]:
        response = app.client.get(
            "/api/v1/notifications/deliveries",
            params={"target_id": hook["id"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        rows: list[dict[str, Any]] = response.json()
        return rows

    eventually(lambda: all(d["status"] == "sent" for d in logged()))
    by_event = {d["event"]: d for d in logged()}
    assert by_event["raised"]["attempts"] == 4
    assert by_event["raised"]["last_error"] == "réponse HTTP 500"
    assert by_event["cleared"]["attempts"] == 1
    assert app.login().status_code == 303
    page = app.client.get("/admin/notifications").text
    assert "réponse HTTP 500" in page
    assert "Envoyée" in page

    # Nothing more is queued: one row per (alert event, target) that matched.
    with app.sessions() as session:
        rows = session.scalars(select(NotificationDelivery)).all()
    assert len(rows) == 4  # Alice ×2, the webhook ×2
    with app.sessions() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("notification.target_create") == 4


def test_quiet_hours_hold_e_mail_for_one_digest_but_not_an_urgent_alert(
    app: WebApp, smtp: SmtpServer
) -> None:
    token = app.token()
    # Quiet from an hour ago to two hours from now, Paris time: whatever the time of the run.
    paris = datetime.now(PARIS)
    start, end = (paris - timedelta(hours=1)).strftime("%H:%M"), (paris + timedelta(hours=2))
    target = add_target(
        app, token, channel="email", address="dora@pays.example",
        quiet_start=start, quiet_end=end.strftime("%H:%M"),
    )  # fmt: skip
    now = datetime.now(UTC)
    changes = [
        outbox.AlertChange(1, "dev-a", "offline", "hors ligne", AlertEvent.RAISED, now),
        outbox.AlertChange(2, "dev-b", "printer", "Erreur : papier", AlertEvent.RAISED, now),
        outbox.AlertChange(3, "dev-b", "temperature", "85.0 °C", AlertEvent.RAISED, now),
    ]
    with app.sessions.begin() as session:
        assert outbox.enqueue(session, changes, timedelta(0)) == 3
    # The urgent one goes at once, alone.
    smtp.inbox.wait_for(lambda got: len(got) >= 1)
    assert "Température élevée" in smtp.inbox.messages[0].message["Subject"]
    with app.sessions() as session:
        held = session.scalars(
            select(NotificationDelivery).where(NotificationDelivery.held.is_(True))
        ).all()
    assert len(held) == 2
    assert all(d.next_attempt_at > now and d.status == "pending" for d in held)
    assert all(d.target_id == target["id"] for d in held)
    # The quiet hours end (the clock is moved, not waited for): one digest with both.
    with app.sessions.begin() as session:
        session.execute(update(NotificationDelivery).values(next_attempt_at=now))
    smtp.inbox.wait_for(lambda got: len(got) >= 2)
    digest = smtp.inbox.messages[1].message
    assert digest["Subject"] == "[Guichet Proche] Récapitulatif : 2 alertes ouvertes"
    text = digest.get_content()
    assert "pendant vos heures calmes" in text
    assert "Hors ligne" in text
    assert "Imprimante en erreur" in text


def test_a_refused_login_is_retried_and_the_password_never_logged(
    db_url: str, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "pas-le-bon-mot-de-passe-Zx81"
    caplog.set_level(logging.DEBUG)
    with running_app(db_url, **notify_settings(smtp, password=wrong)) as web:
        web.add_user()
        with web.sessions.begin() as session:
            session.add(Device(id="dev-a", site=SITE_A, name="A", state="online"))
        add_target(web, web.token(), channel="email", address="alice@chalus.example")
        go(web, "dev-a", "offline", datetime.now(UTC))

        def failed_twice() -> bool:
            with web.sessions() as session:
                d = session.scalars(select(NotificationDelivery)).one()
                return d.attempts >= 2

        eventually(failed_twice)
        with web.sessions() as session:
            d = session.scalars(select(NotificationDelivery)).one()
        assert d.status == "pending"
        assert d.last_error == "SMTP : identifiants refusés (535)"
    assert smtp.inbox.messages == []
    assert wrong not in caplog.text
    assert SMTP_PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("at_paris", "expected_end_paris"),
    [
        ("2027-01-15 23:30", "2027-01-16 07:00"),  # after the start, before midnight
        ("2027-01-16 06:59", "2027-01-16 07:00"),  # after midnight
        ("2027-01-16 07:00", None),  # the end is not quiet
        ("2027-01-16 21:59", None),
        ("2027-03-27 23:00", "2027-03-28 07:00"),  # the spring change falls inside
    ],
)
def test_quiet_hours_across_midnight_in_paris_time(
    at_paris: str, expected_end_paris: str | None
) -> None:
    at = datetime.fromisoformat(at_paris).replace(tzinfo=PARIS)
    end = quiet_until("22:00", "07:00", at)
    if expected_end_paris is None:
        assert end is None
    else:
        assert end == datetime.fromisoformat(expected_end_paris).replace(tzinfo=PARIS)
