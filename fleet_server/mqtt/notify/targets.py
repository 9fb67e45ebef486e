"""What an administrator sets: the targets (e-mail recipients, webhooks) told about alerts,
per site and per alert kind, and the delivery log they read. The caller commits (with its
audit entry). Refusals are :class:`TargetError`, in French."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError
from fleet_server.models import NotificationDelivery, NotificationTarget
from fleet_server.mqtt.alert_rules import ALERT_LABELS
from fleet_server.mqtt.notify.quiet import parse_hhmm
from fleet_server.mqtt.notify.vocab import Channel
from fleet_server.security import proxies, sites
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

MAX_ADDRESS = 512
MAX_LABEL = 128
SECRET_BYTES = 32  # a webhook's HMAC key: 256 bits
SECRET_PREFIX = "gpw_"  # noqa: S105 - a prefix, recognisable in a leak scan
EMAIL_RE = re.compile(r"[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
LOG_ROWS = 100  # deliveries shown on the page, newest first


class TargetError(FleetError):
    """A target that cannot be saved, in French (lowercase: the page makes it a sentence)."""


class TargetNotFoundError(TargetError):
    """No target with that id (a forged or deleted one)."""


@dataclass(frozen=True)
class TargetSpec:
    """A target as typed in the form or sent to the API, before checks."""

    channel: str
    address: str
    label: str = ""
    site: str = ""
    kinds: Sequence[str] = ()
    quiet_start: str = ""
    quiet_end: str = ""
    digest: bool = False
    summary: bool = False


def create(session: Session, spec: TargetSpec) -> NotificationTarget:
    """Check and add a target; a webhook gets its signing secret (shown to the admin once)."""
    try:
        channel = Channel(spec.channel)
    except ValueError:
        raise TargetError("canal inconnu (courriel ou webhook)") from None
    address = spec.address.strip()
    if channel is Channel.EMAIL:
        _check_email(address)
    else:
        _check_url(address)
    site = " ".join(spec.site.split())
    if site and site not in sites.known_sites(session):
        raise TargetError(f"site inconnu « {site} »")
    unknown = sorted(set(spec.kinds) - set(ALERT_LABELS))
    if unknown:
        raise TargetError(f"type d'alerte inconnu « {unknown[0]} »")
    quiet = _quiet_hours(spec.quiet_start, spec.quiet_end, channel)
    label = " ".join(spec.label.split())
    if len(label) > MAX_LABEL:
        raise TargetError(f"le libellé est trop long ({MAX_LABEL} caractères au plus)")
    target = NotificationTarget(
        channel=channel.value,
        address=address,
        label=label,
        site=site,
        kinds=sorted(set(spec.kinds)),
        quiet_start=quiet[0],
        quiet_end=quiet[1],
        digest=spec.digest and channel is Channel.EMAIL,
        summary=spec.summary and channel is Channel.EMAIL,
        secret=SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
        if channel is Channel.WEBHOOK
        else None,
        active=True,
        created_at=utcnow(),
    )
    session.add(target)
    session.flush()
    logger.info("notification target created", extra={"target_id": target.id})
    return target


def delete(session: Session, target_id: int) -> NotificationTarget:
    """Remove a target and its delivery log; the row as it was (for the audit entry)."""
    target = session.get(NotificationTarget, target_id)
    if target is None:
        raise TargetNotFoundError("destinataire inconnu")
    session.delete(target)
    session.flush()
    logger.info("notification target deleted", extra={"target_id": target_id})
    return target


def all_targets(session: Session) -> list[NotificationTarget]:
    query = select(NotificationTarget).order_by(
        NotificationTarget.site, NotificationTarget.channel, NotificationTarget.id
    )
    return list(session.scalars(query))


def recent_deliveries(
    session: Session, limit: int = LOG_ROWS, target_id: int | None = None
) -> list[NotificationDelivery]:
    """The delivery log, newest first."""
    query = select(NotificationDelivery).order_by(NotificationDelivery.id.desc()).limit(limit)
    if target_id is not None:
        query = query.where(NotificationDelivery.target_id == target_id)
    return list(session.scalars(query))


def _check_email(address: str) -> None:
    if len(address) > MAX_ADDRESS or not EMAIL_RE.fullmatch(address):
        raise TargetError(f"adresse de courriel invalide « {address[:80]} »")


def _check_url(address: str) -> None:
    """``https://`` anywhere; ``http://`` only to loopback (a signed body is not a secret
    one, but an alert's text has no business crossing a network in clear)."""
    if len(address) > MAX_ADDRESS:
        raise TargetError(f"adresse trop longue ({MAX_ADDRESS} caractères au plus)")
    parts = urlsplit(address)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetError("adresse de webhook invalide (https://…)")
    if parts.username or parts.password:
        raise TargetError("l'adresse d'un webhook ne porte pas d'identifiants")
    if parts.scheme == "http" and not proxies.is_loopback_host(parts.hostname):
        raise TargetError("un webhook hors de cette machine doit être en https://")


def _quiet_hours(start: str, end: str, channel: Channel) -> tuple[str | None, str | None]:
    start, end = start.strip(), end.strip()
    if not start and not end:
        return None, None
    if channel is Channel.WEBHOOK:
        raise TargetError("les heures calmes ne concernent que les courriels")
    if not (start and end):
        raise TargetError("les heures calmes ont un début et une fin")
    try:
        begin, finish = parse_hhmm(start), parse_hhmm(end)
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    if begin == finish:
        raise TargetError("le début et la fin des heures calmes sont identiques")
    return begin.strftime("%H:%M"), finish.strftime("%H:%M")


def audit_detail(target: NotificationTarget) -> dict[str, object]:
    """What the audit log keeps of a target: never the webhook's secret, nor its URL's path
    (chat services put their own secret there) — only its host."""
    address = target.address
    if target.channel == Channel.WEBHOOK:
        parts = urlsplit(address)
        address = f"{parts.scheme}://{parts.netloc}/…"
    quiet = f"{target.quiet_start}–{target.quiet_end}" if target.quiet_start else None
    return {
        "channel": target.channel,
        "address": address,
        "site": target.site or None,
        "kinds": list(target.kinds),
        "quiet_hours": quiet,
        "digest": target.digest,
        "summary": target.summary,
    }


def audit_name(target: NotificationTarget) -> str:
    """How the audit log names a target: its label, its e-mail address, or its number (a
    webhook's URL may carry the receiver's own secret)."""
    if target.label:
        return target.label
    return target.address if target.channel == Channel.EMAIL else f"webhook n° {target.id}"
