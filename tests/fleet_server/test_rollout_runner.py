"""The rollout runner (docs/updates.md) on both databases: an administrator starts a rollout
(one canary, then the rest); a counter in an opening is not ordered, a closed one is, through
the command path (row, audit, published after the commit); the canary's failure, stored by
the ingest as the broker would deliver it, stops the rollout, raises an alert with its
notification and writes the audit log; resuming clears the alert. The publication is
recorded by a sender that stands in for the ingest (the MQTT path itself is
test_remote_actions.py's)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.errors import RolloutError
from fleet_server.models import (
    Alert,
    AuditEntry,
    CommandRecord,
    CounterUpdateRecord,
    Device,
    NotificationDelivery,
    NotificationTarget,
    Release,
    RolloutRecord,
    ScheduleRule,
)
from fleet_server.mqtt import store
from fleet_server.mqtt.publisher import CommandNotSentError
from fleet_server.updates import manage, runner
from fleet_server.updates.rollout import RolloutAction, RolloutState
from fleet_server.updates.waves import Canary, Rest
from guichet import contract
from guichet.schedule import PARIS
from guichet.updates import UpdateOrder, UpdateState
from tests.fleet_server.storage_support import make_settings, received

TUESDAY = date(2025, 3, 18)
CHALUS, GORRE = "Monts de Châlus", "Vallée de la Gorre"
CANARY, SECOND, THIRD = "chalus-01", "gorre-01", "gorre-02"  # by site, then id
SETTINGS = make_settings(public_url="https://flotte.example.fr")


def paris(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(TUESDAY, time(hour, minute), tzinfo=PARIS)


class Recorder:
    """Stands in for the ingest's ``send_command``; ``down`` as if the broker were gone."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, contract.Command]] = []
        self.down = False

    def send_command(self, device_id: str, command: contract.Command) -> None:
        if self.down:
            raise CommandNotSentError("broker down")
        self.sent.append((device_id, command))

    def publish_config(self, device_id: str, config: contract.DeviceConfig) -> None:
        raise AssertionError("no configuration is sent by a rollout")


def _seed(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        for device_id, site in ((CANARY, CHALUS), (SECOND, GORRE), (THIRD, GORRE)):
            session.add(
                Device(
                    id=device_id, site=site, name=device_id, state="online",
                    broker_password_hash="$7$101$x$y", software_version="1.4.0",
                )
            )  # fmt: skip
        session.add(Device(id="gorre-09", site=GORRE, state="online", software_version="1.5.0"))
        session.add(  # the canary's town hall: a Caf slot on Tuesday 9–12
            ScheduleRule(
                service="caf", mode="slot", weekday=TUESDAY.weekday(),
                start_time=time(9), end_time=time(12), site=CHALUS,
            )
        )  # fmt: skip
        session.add(
            NotificationTarget(
                channel="email", address="it@pays.fr", label="IT", created_at=paris(1)
            )
        )
        release = Release(
            version="1.5.0", compatible="guichet-proche-rpi-arm64", size=1000, sha256="a" * 64,
            path="/nowhere.raucb", uploaded_at=paris(1), uploaded_by="admin",
        )  # fmt: skip
        session.add(release)
        session.flush()
        plan = manage.RolloutPlan(release_id=release.id, specs=[Canary(1), Rest()])
        record = manage.create(session, plan, actor="admin", actor_user_id=None)
        manage.perform(
            session, record.id, RolloutAction.START, actor="admin", actor_user_id=None,
            now=paris(8),
        )  # fmt: skip
        return record.id


def _tick(sessions: sessionmaker[Session], sender: Recorder, at: datetime) -> runner.TickResult:
    return runner.run_once(sessions, SETTINGS, sender, lambda _d: False, at)


def _report(
    sessions: sessionmaker[Session], device_id: str, state: UpdateState, at: datetime
) -> None:
    progress = contract.UpdateProgress(
        id=uuid.uuid4(), at=at, release="1.5.0", state=state,
        reason="Le guichet n'a pas rejoint la flotte en 10 minutes"
        if state is UpdateState.ROLLED_BACK else None,
    )  # fmt: skip
    with sessions.begin() as session:
        store.apply_batch(session, [received(device_id, progress, at)], SETTINGS)


def test_the_canary_in_an_opening_waits_then_its_failure_stops_the_rollout(
    sessions: sessionmaker[Session],
) -> None:
    rollout_id = _seed(sessions)
    with sessions() as session:
        record = session.get(RolloutRecord, rollout_id)
        assert record is not None
        assert record.waves == [[CANARY], [SECOND, THIRD]]  # gorre-09 already runs 1.5.0
    sender = Recorder()

    at_ten = _tick(sessions, sender, paris(10))  # the Caf slot is open at the canary's
    assert sender.sent == []
    assert at_ten.verdicts[CANARY].reason == "Ouvert : Caf jusqu'à 12 h."

    _tick(sessions, sender, paris(12, 45))  # closed, 45 min after: ordered
    assert [device for device, _c in sender.sent] == [CANARY]
    order = UpdateOrder.from_args(sender.sent[0][1].args)
    assert order.bundle_url == "https://flotte.example.fr/api/v1/bundles/1.5.0"
    assert (order.size, order.sha256) == (1000, "a" * 64)
    _tick(sessions, sender, paris(12, 50))
    assert len(sender.sent) == 1  # not ordered twice while it has not answered

    _report(sessions, CANARY, UpdateState.DOWNLOADING, paris(12, 51))
    _report(sessions, CANARY, UpdateState.ROLLED_BACK, paris(13, 20))
    _tick(sessions, sender, paris(13, 21))
    assert len(sender.sent) == 1  # the next wave was not ordered
    with sessions() as session:
        record = session.get(RolloutRecord, rollout_id)
        assert record is not None
        assert record.state == RolloutState.STOPPED
        assert record.reason is not None
        assert "1 guichet(s) en échec" in record.reason
        alert = session.scalar(select(Alert).where(Alert.kind == "update_stopped"))
        assert alert is not None
        assert alert.device_id == CANARY
        assert alert.cleared_at is None
        assert "1.5.0" in alert.detail
        canary = session.get(Device, CANARY)
        assert canary is not None
        assert canary.open_alerts == 1
        assert session.scalar(select(NotificationDelivery.kind)) == "update_stopped"
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == [
            "rollout.create", "rollout.start", "update.order", "rollout.stop",
        ]  # fmt: skip
        command = session.get(CommandRecord, sender.sent[0][1].request_id)
        assert command is not None
        assert command.device_id == CANARY

    with sessions.begin() as session:  # an administrator who read why resumes it
        manage.perform(
            session, rollout_id, RolloutAction.RESUME, actor="admin", actor_user_id=None,
            now=paris(13, 30),
        )  # fmt: skip
    with sessions() as session:
        alert = session.scalar(select(Alert).where(Alert.kind == "update_stopped"))
        assert alert is not None
        assert alert.cleared_at is not None
        canary = session.get(Device, CANARY)
        assert canary is not None
        assert canary.open_alerts == 0
    late = _tick(sessions, sender, paris(13, 31))  # the canary's wave is finished: the rest goes
    assert sorted(device for device, _c in sender.sent[1:]) == [SECOND, THIRD], late


def test_a_refused_order_is_sent_again_and_a_lost_one_is_withdrawn(
    sessions: sessionmaker[Session],
) -> None:
    _seed(sessions)
    sender = Recorder()
    sender.down = True
    _tick(sessions, sender, paris(7))
    with sessions() as session:
        row = session.scalar(
            select(CounterUpdateRecord).where(CounterUpdateRecord.device_id == CANARY)
        )
        assert row is not None
        assert row.ordered_at is None
    sender.down = False
    _tick(sessions, sender, paris(7, 1))
    assert len(sender.sent) == 1
    with sessions.begin() as session:  # the counter acks ok=false: a citizen is there
        ack = contract.CommandAck(
            request_id=sender.sent[0][1].request_id, at=paris(7, 2), ok=False,
            detail="Refusée : un appel est en cours",
        )  # fmt: skip
        store.apply_batch(session, [received(CANARY, ack, paris(7, 2))], SETTINGS)
    _tick(sessions, sender, paris(7, 3))  # not at every check: after REFUSED_RETRY
    assert [device for device, _c in sender.sent] == [CANARY]
    _tick(sessions, sender, paris(7, 1) + runner.REFUSED_RETRY)
    assert [device for device, _c in sender.sent] == [CANARY, CANARY]


def test_a_finished_rollout_cannot_be_paused_and_nobody_is_ordered_in_a_call(
    sessions: sessionmaker[Session],
) -> None:
    rollout_id = _seed(sessions)
    sender = Recorder()
    result = runner.run_once(sessions, SETTINGS, sender, {CANARY}.__contains__, paris(7))
    assert sender.sent == []
    assert result.verdicts[CANARY].reason == "Un appel est en cours."
    with sessions.begin() as session:
        manage.perform(session, rollout_id, RolloutAction.CANCEL, actor="a", actor_user_id=None)
    with sessions.begin() as session, pytest.raises(RolloutError, match="annulé"):
        manage.perform(session, rollout_id, RolloutAction.PAUSE, actor="a", actor_user_id=None)
    _tick(sessions, sender, paris(7, 5))
    assert sender.sent == []
