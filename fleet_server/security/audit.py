"""The audit log: every administrative act, with who, when and what.

``record`` adds the entry to the caller's session, so it is committed (or rolled back) with
the act itself: no act without its entry, no entry for an act that failed. Details never
carry a secret — only what was done and to what.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from fleet_server import paging
from fleet_server.models import AuditEntry
from guichet.actions import ACTION_LABELS
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

SYSTEM_ACTOR: Final = "système"  # the CLI and the server itself
# French labels of the actions, for the page and the export.
ACTIONS: Final = {
    "user.create": "Utilisateur créé",
    "user.update": "Utilisateur modifié",
    "user.password_reset": "Mot de passe réinitialisé",
    "user.deactivate": "Utilisateur désactivé",
    "user.activate": "Utilisateur réactivé",
    "user.totp_enable": "Double authentification activée",
    "user.totp_disable": "Double authentification retirée",
    "api_token.create": "Jeton d'API créé",
    "service.create": "Service créé",
    "device.service": "Service d'un guichet choisi",
    "device.speech": "Lecture à voix haute d'un guichet réglée",
    "device.identity": "Site et nom d'un guichet modifiés",
    "device.call_token": "Jeton d'appel généré",
    "enrolment_token.create": "Jeton d'enrôlement créé",
    "enrolment_token.revoke": "Jeton d'enrôlement révoqué",
    "enrolment.approve": "Enrôlement approuvé",
    "enrolment.reject": "Enrôlement refusé",
    "device.rotate": "Identifiants d'un guichet renouvelés",
    "device.revoke": "Guichet retiré du service",
    "command.send": "Commande envoyée",
    "support.upload": "Capture d'écran ou journaux reçus d'un guichet",
    "support.upload_refused": "Envoi d'un guichet refusé",
    "support.view": "Capture d'écran ou journaux d'un guichet consultés",
    "service.update": "Réglages d'un service modifiés",
    "schedule.rule_create": "Plage horaire ajoutée",
    "schedule.rule_delete": "Plage horaire supprimée",
    "schedule.permanence_create": "Permanence ajoutée",
    "schedule.permanence_delete": "Permanence supprimée",
    "schedule.exception_create": "Exception au calendrier ajoutée",
    "schedule.exception_delete": "Exception au calendrier supprimée",
    "appointment.book": "Rendez-vous réservé",
    "appointment.cancel": "Rendez-vous annulé",
    "appointment.purge": "Données des usagers effacées (rendez-vous passés)",
    "questionnaire.save": "Questionnaire enregistré",
    "ical.rotate": "Lien d'agenda renouvelé",
    "notification.target_create": "Destinataire d'alertes ajouté",
    "notification.target_delete": "Destinataire d'alertes supprimé",
    "site.threshold_set": "Délai d'alerte hors ligne d'un site réglé",
    "site.threshold_remove": "Délai d'alerte hors ligne d'un site retiré",
    "release.upload": "Version du logiciel déposée",
    "rollout.create": "Déploiement créé",
    "rollout.start": "Déploiement lancé",
    "rollout.pause": "Déploiement mis en pause",
    "rollout.resume": "Déploiement repris",
    "rollout.cancel": "Déploiement annulé",
    "rollout.stop": "Déploiement arrêté (seuil d'erreurs atteint)",
    "rollout.complete": "Déploiement terminé",
    "update.order": "Mise à jour commandée à un guichet",
}
# French labels of the details' keys, for the page (the CSV keeps the keys, as JSON).
DETAIL_LABELS: Final = {
    "role": "Rôle",
    "service": "Service",
    "speech": "Lecture à voix haute",
    "site": "Site",
    "offline_after_min": "Délai avant l'alerte hors ligne (min)",
    "previous_offline_after_min": "Délai précédent (min)",
    "name": "Nom",
    "label": "Libellé",
    "previous_site": "Site précédent",
    "previous_name": "Nom précédent",
    "via": "Par",
    "questions": "Questions",
    "command": "Commande",
    "request_id": "Demande",
    "device_id": "Guichet",
    "start": "Début",
    "agent_user_id": "Agent (n°)",
    "count": "Rendez-vous concernés",
    "token_id": "Jeton (n°)",
    "valid_hours": "Validité (heures)",
    "max_uses": "Utilisations permises",
    "pre_approved": "Approuvé d'avance",
    "hardware_id": "Matériel",
    "minutes": "Durée d'un rendez-vous (min)",
    "fallback_s": "Sonnerie de l'agent réservé seul",
    "position": "Ordre",
    "phone": "Téléphone",
    "mode": "Accès",
    "scope": "Portée",
    "weekday": "Jour",
    "hours": "Heures",
    "day": "Date",
    "half": "Demi-journée",
    "agents": "Agents (n°)",
    "kind": "Type",
    "channel": "Canal",
    "address": "Adresse",
    "kinds": "Types d'alerte",
    "quiet_hours": "Heures calmes",
    "digest": "Récapitulatif",
    "summary": "Résumé quotidien",
    "version": "Version",
    "release": "Version",
    "rollout_id": "Déploiement (n°)",
    "reason": "Motif",
    "waves": "Vagues",
    "max_failures": "Arrêt après (échecs dans une vague)",
    "max_failure_pct": "Arrêt après (% d'échecs dans une vague)",
    "night": "Plage de nuit (heure de Paris)",
    "sha256": "Empreinte SHA-256",
    "size": "Taille (octets)",
    "bytes": "Taille (octets)",
    "why": "Motif",
}
# French words for the details' coded values, by key (roles, services, access modes and
# dates are the page's own vocabularies: see fleet_server.web.format).
DETAIL_VALUES: Final = {
    "via": {"cli": "ligne de commande"},
    "command": {
        "rotate_credentials": "renouveler les identifiants",
        **{action.value: label.lower() for action, label in ACTION_LABELS.items()},
    },
    "half": {"am": "matin", "pm": "après-midi"},
    "kind": {"closed": "fermeture", "open": "ouverture exceptionnelle"},
    "channel": {"email": "courriel", "webhook": "webhook"},
}


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    *,
    actor_user_id: int | None = None,
    **detail: Any,
) -> AuditEntry:
    """Add one entry to the session; the caller's commit makes it durable."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(
        at=utcnow(),
        actor_user_id=actor_user_id,
        actor=actor,
        action=action,
        target=target,
        detail=detail,
    )
    session.add(entry)
    logger.info("audit", extra={"actor": actor, "action": action, "target": target})
    return entry


ORDER: Final = paging.Ordering(AuditEntry.at, AuditEntry.id, descending=True)


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None  # exact name
    target: str | None = None  # contained in the entry's object
    until: date | None = None  # entries of this Paris day or before

    def conditions(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if self.action:
            conds.append(AuditEntry.action == self.action)
        if self.actor:
            conds.append(AuditEntry.actor == self.actor)
        if self.target and self.target.strip():
            conds.append(paging.contains(self.target, AuditEntry.target))
        if self.until:
            conds.append(paging.until_day(AuditEntry.at, self.until))
        return conds


def audit_page(
    session: Session,
    flt: AuditFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = paging.DEFAULT_PAGE_SIZE,
) -> paging.Page[AuditEntry]:
    """A page of the log, newest first; not counted (it grows with time)."""
    stmt = select(AuditEntry).where(*flt.conditions())
    return paging.keyset_page(
        session, stmt, ORDER, _entry, after=after, before=before, limit=limit, counted=False
    )


def _entry(row: paging.AnyRow) -> AuditEntry:
    entry: AuditEntry = row[0]
    return entry


def _all(session: Session) -> Iterable[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)
    yield from session.scalars(query.execution_options(yield_per=1000))


def describe(detail: dict[str, Any]) -> str:
    """The details as JSON, for the CSV export (the page says them in French)."""
    return json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else ""


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a leading = + - @ becomes text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_csv(session: Session) -> str:
    """The whole log, oldest first, as CSV (UTF-8; a spreadsheet opens it as is)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["horodatage_utc", "auteur", "action", "libellé", "objet", "détails"])
    for e in _all(session):
        writer.writerow(
            [
                e.at.isoformat(),
                _cell(e.actor),
                e.action,
                ACTIONS.get(e.action, e.action),
                _cell(e.target),
                _cell(describe(e.detail)),
            ]
        )
    return out.getvalue()
