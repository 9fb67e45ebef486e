"""E-mail: the French messages (one alert, a digest, the daily summary) and their sending
through the Pays's SMTP relay (aiosmtplib, STARTTLS or implicit TLS, login). The password is
read from the settings when sending and never logged nor put in an error."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from fleet_server.errors import FleetError
from fleet_server.models import NotificationDelivery
from fleet_server.mqtt.alert_rules import ALERT_LABELS
from fleet_server.mqtt.notify.quiet import PARIS
from fleet_server.mqtt.notify.summary import Figures
from fleet_server.mqtt.notify.vocab import ALERT_EVENT_LABELS, AlertEvent
from fleet_server.settings import Settings
from guichet.contract import DEVICE_STATE_LABELS

logger = logging.getLogger(__name__)

STATE_LABELS = {state.value: label for state, label in DEVICE_STATE_LABELS.items()}

SUBJECT_PREFIX = "[Guichet Proche]"
ERROR_MAX_CHARS = 500  # NotificationDelivery.last_error keeps this much
FOOTER = (
    "—\n"
    "Message automatique de Guichet Proche, envoyé aux destinataires que les administrateurs\n"
    "ont choisis (Administration › Notifications). Ne répondez pas à ce message."
)


class DeliveryError(FleetError):
    """A delivery that failed this time (it is tried again); its text goes in the log."""


def _when(d: NotificationDelivery) -> str:
    return d.at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def _counter(d: NotificationDelivery) -> str:
    return f"{d.device_name} ({d.device_id})" if d.device_name else d.device_id


def _kind(d: NotificationDelivery) -> str:
    return ALERT_LABELS.get(d.kind, d.kind)


def _lines(d: NotificationDelivery) -> list[str]:
    verb = "Ouverte le" if d.event == AlertEvent.RAISED else "Levée le"
    lines = [f"  Guichet : {_counter(d)}", f"  Site : {d.site or 'non renseigné'}"]
    lines.append(f"  Alerte : {_kind(d)}")
    if d.detail:
        lines.append(f"  Détail : {d.detail}")
    lines.append(f"  {verb} : {_when(d)} (heure de Paris)")
    return lines


def one_message(d: NotificationDelivery, sender: str, to: str) -> EmailMessage:
    """One alert raised or cleared, in French."""
    event = ALERT_EVENT_LABELS.get(d.event, d.event)
    where = f"{d.device_name or d.device_id}" + (f", {d.site}" if d.site else "")
    subject = f"{SUBJECT_PREFIX} {event} : {_kind(d)} — {where}"
    intro = (
        "Une alerte vient d'être ouverte sur un guichet."
        if d.event == AlertEvent.RAISED
        else "Une alerte vient d'être levée : le guichet est revenu à la normale sur ce point."
    )
    body = "\n".join(["Bonjour,", "", intro, "", *_lines(d), "", FOOTER])
    return _message(subject, body, sender, to)


def digest_message(
    deliveries: Sequence[NotificationDelivery], sender: str, to: str, *, quiet: bool
) -> EmailMessage:
    """Several alert changes in one message, oldest first."""
    ordered = sorted(deliveries, key=lambda d: (d.at, d.id))
    raised = sum(1 for d in ordered if d.event == AlertEvent.RAISED)
    cleared = len(ordered) - raised
    counts = [_count(raised, "ouverte"), _count(cleared, "levée")]
    subject = f"{SUBJECT_PREFIX} Récapitulatif : " + ", ".join(c for c in counts if c)
    intro = (
        "Voici les alertes ouvertes et levées pendant vos heures calmes."
        if quiet
        else "Voici les alertes ouvertes et levées ces dernières minutes."
    )
    parts = ["Bonjour,", "", intro, ""]
    for d in ordered:
        parts.append(f"{ALERT_EVENT_LABELS.get(d.event, d.event)} — {_kind(d)}")
        parts.extend(_lines(d))
        parts.append("")
    parts.append(FOOTER)
    return _message(subject, "\n".join(parts), sender, to)


def summary_message(f: Figures, sender: str, to: str) -> EmailMessage:
    """The daily summary, in French: counters down, alerts open, yesterday's calls."""
    where = f.site or "tous les sites"
    yesterday = f.day - timedelta(days=1)
    subject = f"{SUBJECT_PREFIX} Résumé du {f.day:%d/%m/%Y} — {where}"
    parts = ["Bonjour,", "", f"Voici l'état des guichets ({where}) ce {f.day:%d/%m/%Y}.", ""]
    parts.append(f"Guichets hors service : {f.down_total}")
    for name, site, state, since in f.down:
        when = f" depuis le {_paris(since)}" if since else ""
        label = STATE_LABELS.get(state, state)
        parts.append(f"  - {name}{_site(site, f.site)} : {label.lower()}{when}")
    parts.extend(_more(f.down_total, len(f.down)))
    parts += ["", f"Alertes ouvertes : {f.alerts_total}"]
    for name, site, kind, raised_at in f.alerts:
        label = ALERT_LABELS.get(kind, kind)
        parts.append(f"  - {label} — {name}{_site(site, f.site)}, depuis le {_paris(raised_at)}")
    parts.extend(_more(f.alerts_total, len(f.alerts)))
    parts += [
        "",
        f"Appels d'hier ({yesterday:%d/%m/%Y}) : {f.calls} demandés, {f.answered} décrochés",
        "",
        "Heures de Paris.",
        "",
        FOOTER,
    ]
    return _message(subject, "\n".join(parts), sender, to)


def _paris(at: datetime) -> str:
    return at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def _site(site: str, only: str) -> str:
    return "" if only or not site else f" ({site})"


def _more(total: int, shown: int) -> list[str]:
    return [f"  … et {total - shown} autres"] if total > shown else []


def _count(n: int, word: str) -> str:
    """``1 alerte levée``, ``3 alertes ouvertes``; nothing for none."""
    if n == 0:
        return ""
    return f"{n} alerte {word}" if n == 1 else f"{n} alertes {word}s"


def _message(subject: str, body: str, sender: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="guichet-proche")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message["Content-Language"] = "fr"
    message.set_content(body, charset="utf-8")
    return message


def _tls_context(settings: Settings) -> ssl.SSLContext:
    ca = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    return ssl.create_default_context(cafile=ca)


async def send(settings: Settings, message: EmailMessage) -> None:
    """Hand one message to the relay; DeliveryError (French, no secret) when it fails."""
    if not settings.smtp_host:
        raise DeliveryError("aucun serveur SMTP configuré (GUICHET_SMTP_HOST)")
    security = settings.smtp_security
    password = settings.smtp_password.get_secret_value() or None
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=password,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            tls_context=_tls_context(settings) if security != "none" else None,
            timeout=settings.smtp_timeout_s,
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP : identifiants refusés ({exc.code})") from None
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP : refusé ({exc.code} {exc.message})"[:ERROR_MAX_CHARS]) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
        text = f"SMTP : {type(exc).__name__} {exc}"
        raise DeliveryError(text[:ERROR_MAX_CHARS]) from None
