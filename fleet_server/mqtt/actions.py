"""Remote support's actions on counters (issue 14, item 1), the server's side: checks, the
command's row, its audit entry and its publication, in one transaction; and what became of
each one (pending → done or failed, or unanswered past its deadline).

An action is refused, with a French reason, for a counter that is unknown or withdrawn,
offline (a clean session: the broker would not keep the command), or — for those that would
cut a citizen off (``guichet.actions.DISRUPTIVE``) — in a call on this server; the counter
refuses them too while a citizen is there (its state is the truth). A refresh publishes the
counter's retained configuration first and names its version: the counter answers once it
has applied that one. Acks are stored by the ingest (``store/kinds.py``): only the addressed
counter's, only the first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import AuditEntry, CommandRecord, Device
from fleet_server.security import audit
from guichet import contract
from guichet.actions import (
    ACTION_LABELS,
    ACTION_TIMEOUT_S,
    DEFAULT_LOG_MINUTES,
    DISRUPTIVE,
    LEVELS,
    MAX_LOG_MINUTES,
    MINUTES_ARG,
    PERCENT_ARG,
    Action,
)
from guichet.contract import DeviceState, utcnow

ActionState = Literal["pending", "done", "failed", "timeout"]
ACTION_STATE_LABELS: Final[dict[str, str]] = {  # French, as the page and the API say them
    "pending": "En attente du guichet",
    "done": "Fait",
    "failed": "Échec",
    "timeout": "Sans réponse du guichet",
}
DEFAULT_TIMEOUT_S = 60.0  # commands from before deadlines were stored
RECENT_ACTIONS = 10  # what a counter's page lists
MAX_BATCH = 500  # counters in one action on a selection or a site


class ActionRefusedError(FleetError):
    """The action was not sent; ``str(exc)`` says why, in French. ``status`` is the HTTP
    status a route answers with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class Sender(Protocol):
    """What sending needs of the MQTT ingest (``Ingest`` is one)."""

    def send_command(self, device_id: str, command: contract.Command) -> None: ...
    def publish_config(self, device_id: str, config: contract.DeviceConfig) -> None: ...


BuildConfig = Callable[[Session, str], contract.DeviceConfig | None]


@dataclass(frozen=True)
class ActionView:
    """One action on a counter, as the page and the API show it."""

    request_id: uuid.UUID
    device_id: str
    action: str
    label: str
    percent: int | None
    sent_at: datetime
    actor: str | None
    state: ActionState
    state_label: str
    detail: str | None
    checks: list[dict[str, Any]] = field(default_factory=list)
    # A test call's figures (calls/line_figures.py), once the server's answerer stored them.
    measurements: dict[str, Any] | None = None

    @property
    def pending(self) -> bool:
        return self.state == "pending"


def state_of(record: CommandRecord, now: datetime) -> ActionState:
    if record.acked_at is not None:
        return "done" if record.ok else "failed"
    expires = record.expires_at or record.sent_at + timedelta(seconds=DEFAULT_TIMEOUT_S)
    return "pending" if now < expires else "timeout"


def view(record: CommandRecord, now: datetime) -> ActionView:
    state = state_of(record, now)
    try:
        label = ACTION_LABELS[Action(record.name)]
    except ValueError:
        label = record.name
    return ActionView(
        request_id=record.request_id,
        device_id=record.device_id,
        action=record.name,
        label=label,
        percent=_percent(record.args),
        sent_at=record.sent_at,
        actor=record.actor,
        state=state,
        state_label=ACTION_STATE_LABELS[state],
        detail=record.detail,
        checks=list(record.checks or []),
        measurements=dict(record.measurements) if record.measurements else None,
    )


@dataclass(frozen=True)
class Prepared:
    """An action recorded and audited, not yet published."""

    view: ActionView
    command: contract.Command
    config: contract.DeviceConfig | None
    audit_id: int


def _percent(args: dict[str, Any] | None) -> int | None:
    value = (args or {}).get(PERCENT_ARG)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def prepare_action(
    session: Session,
    device_id: str,
    action: Action,
    *,
    actor: str,
    actor_user_id: int | None,
    in_call: Callable[[str], bool],
    build_config: BuildConfig,
    percent: int | None = None,
    minutes: int | None = None,
) -> Prepared:
    """Check, record and audit one action; the caller commits, then ``publish``es it — after
    the commit, so that an ack faster than the commit still finds its row. ``percent``: the
    level of a volume or brightness action (``guichet.actions.LEVELS``); ``minutes``: how
    far back ``fetch_logs`` goes (``DEFAULT_LOG_MINUTES`` if None)."""
    if action in LEVELS and (percent is None or not 0 <= percent <= 100):
        raise ActionRefusedError("indiquez un niveau de 0 à 100 %", 400)
    if minutes is not None and not 1 <= minutes <= MAX_LOG_MINUTES:
        raise ActionRefusedError(f"indiquez une durée de 1 à {MAX_LOG_MINUTES} minutes", 400)
    device = session.get(Device, device_id)
    if device is None or device.revoked_at is not None:
        raise ActionRefusedError("guichet inconnu ou retiré du service", 404)
    if device.state != DeviceState.ONLINE:
        raise ActionRefusedError(
            "le guichet n'est pas en ligne : l'action ne peut pas lui parvenir"
        )
    if action in DISRUPTIVE and in_call(device_id):
        raise ActionRefusedError(
            "un appel est en cours sur ce guichet : l'action couperait l'usager ; réessayez"
            " après l'appel"
        )
    if action is Action.SCREENSHOT and in_call(device_id):  # what the citizen sees is theirs
        raise ActionRefusedError(
            "un appel est en cours sur ce guichet : pas de capture d'écran pendant un appel"
        )
    now = utcnow()
    args: dict[str, contract.Scalar] = {}
    config = None
    if action is Action.REFRESH_CONFIG:
        config = build_config(session, device_id)
        if config is None:
            raise ActionRefusedError("aucune configuration à envoyer pour ce guichet")
        args["version"] = config.version
    if action in LEVELS:
        args[PERCENT_ARG] = percent
    if action is Action.FETCH_LOGS:
        args[MINUTES_ARG] = minutes if minutes is not None else DEFAULT_LOG_MINUTES
    command = contract.Command(request_id=uuid.uuid4(), at=now, name=action.value, args=args)
    record = CommandRecord(
        request_id=command.request_id,
        device_id=device_id,
        name=command.name,
        args=dict(args),
        sent_at=now,
        expires_at=now + timedelta(seconds=ACTION_TIMEOUT_S[action]),
        actor=actor,
    )
    session.add(record)
    entry = audit.record(
        session, actor, "command.send", device_id, actor_user_id=actor_user_id,
        command=command.name, request_id=str(command.request_id),
    )  # fmt: skip
    session.flush()
    return Prepared(view(record, now), command, config, entry.id)


def publish(sender: Sender, prepared: Prepared) -> None:
    """Hand the action to the broker (the configuration first, for a refresh); raises
    ``CommandNotSentError`` when it cannot: then ``withdraw`` it."""
    device_id = prepared.view.device_id
    if prepared.config is not None:
        sender.publish_config(device_id, prepared.config)
    sender.send_command(device_id, prepared.command)


def withdraw(session: Session, prepared: Prepared) -> None:
    """An action that never left: neither its row nor its audit entry stays."""
    session.execute(
        delete(CommandRecord).where(CommandRecord.request_id == prepared.view.request_id)
    )
    session.execute(delete(AuditEntry).where(AuditEntry.id == prepared.audit_id))


def batch_targets(
    session: Session, *, site: str | None, device_ids: list[str]
) -> tuple[list[str], list[str]]:
    """The counters a batch names that exist (not withdrawn), and those it names that do not
    (or not on ``site``, when both are given). By site: every counter of that site."""
    query = select(Device.id).where(Device.revoked_at.is_(None)).order_by(Device.id)
    if site is not None:
        query = query.where(Device.site == site)
    if device_ids:
        query = query.where(Device.id.in_(device_ids))
    elif site is None:
        return [], []
    found = list(session.scalars(query.limit(MAX_BATCH)))
    unknown = sorted(set(device_ids) - set(found))
    return found, unknown


def recent_actions(
    session: Session, device_id: str, now: datetime, limit: int = RECENT_ACTIONS
) -> list[ActionView]:
    """This counter's latest actions, newest first (other commands are not listed)."""
    query = (
        select(CommandRecord)
        .where(
            CommandRecord.device_id == device_id,
            CommandRecord.name.in_([a.value for a in Action]),
        )
        .order_by(CommandRecord.sent_at.desc())
        .limit(limit)
    )
    return [view(r, now) for r in session.scalars(query)]


def one_action(
    session: Session, device_id: str, request_id: uuid.UUID, now: datetime
) -> ActionView | None:
    record = session.get(CommandRecord, request_id)
    if record is None or record.device_id != device_id:
        return None
    return view(record, now)
