"""``/admin/notifications``: who is told about alerts (e-mail recipients and webhooks, per
site and alert kind, with quiet hours), the delivery log, and each site's own delay before a
counter offline or silent raises its alert. Administrators only; every
change in the audit log. A new webhook's signing secret is shown once, on the answer page."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from fleet_server.mqtt import thresholds
from fleet_server.mqtt.alert_rules import ALERT_LABELS
from fleet_server.mqtt.notify import targets
from fleet_server.mqtt.notify.vocab import (
    ALERT_EVENT_LABELS,
    CHANNEL_LABELS,
    DELIVERY_STATUS_LABELS,
    URGENT_KINDS,
    Channel,
)
from fleet_server.security import audit, sites
from fleet_server.web.deps import (
    AdminUser,
    Ctx,
    Db,
    SubmittedForm,
    check_csrf,
    redirect_to,
    render,
)

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
PAGE = "/admin/notifications"


@router.get(PAGE, response_class=HTMLResponse)
def notifications_page(request: Request, ctx: Ctx, db: Db, user: AdminUser) -> Response:
    settings = ctx.settings
    context = {
        "section": "notifications",
        "targets": targets.all_targets(db),
        "deliveries": targets.recent_deliveries(db),
        "sites": sites.known_sites(db),
        "kinds": ALERT_LABELS,
        "urgent": [ALERT_LABELS[k] for k in sorted(URGENT_KINDS)],
        "channels": CHANNEL_LABELS,
        "events": ALERT_EVENT_LABELS,
        "statuses": DELIVERY_STATUS_LABELS,
        "smtp_host": settings.smtp_host,
        "smtp_from": settings.smtp_from,
        "digest_min": settings.notify_digest_min,
        "summary_hour": settings.notify_summary_hour,
        "max_attempts": settings.notify_max_attempts,
        "thresholds": thresholds.all_thresholds(db),
        "offline_after_min": settings.alert_offline_after_min,
        "threshold_range": (thresholds.MIN_MINUTES, thresholds.MAX_MINUTES),
    }
    return render(request, "notifications.html", context, principal=user)


@router.post(f"{PAGE}/targets", response_class=HTMLResponse)
def create_target(
    request: Request,
    db: Db,
    user: AdminUser,
    typed: SubmittedForm,
    channel: Annotated[str, Form(max_length=16)] = "",
    address: Annotated[str, Form(max_length=targets.MAX_ADDRESS)] = "",
    label: Annotated[str, Form(max_length=targets.MAX_LABEL)] = "",
    site: Annotated[str, Form(max_length=sites.MAX_SITE)] = "",
    kinds: Annotated[list[str] | None, Form()] = None,
    quiet_start: Annotated[str, Form(max_length=5)] = "",
    quiet_end: Annotated[str, Form(max_length=5)] = "",
    digest: Annotated[str, Form(max_length=8)] = "",
    summary: Annotated[str, Form(max_length=8)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    spec = targets.TargetSpec(
        channel, address, label, site, kinds or [], quiet_start, quiet_end, digest == "on",
        summary=summary == "on",
    )  # fmt: skip
    try:
        target = targets.create(db, spec)
    except targets.TargetError as exc:
        db.rollback()
        url = f"{PAGE}#nouveau-destinataire"
        return redirect_to(request, url, form="target", error=str(exc), values=typed)
    audit.record(
        db, user.username, "notification.target_create", targets.audit_name(target),
        actor_user_id=user.user_id, **targets.audit_detail(target),
    )  # fmt: skip
    db.commit()
    if target.channel == Channel.WEBHOOK:  # its secret, once, on this answer (never a flash)
        context = {"section": "notifications", "target": target, "secret": target.secret}
        return render(request, "notification_secret.html", context, principal=user)
    notice = f"Destinataire « {target.label or target.address} » ajouté."
    return redirect_to(request, PAGE, form="targets", notice=notice, changed=str(target.id))


@router.post(f"{PAGE}/targets/{{target_id}}/delete")
def delete_target(
    request: Request,
    target_id: int,
    db: Db,
    user: AdminUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    try:
        target = targets.delete(db, target_id)
    except targets.TargetNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Destinataire inconnu.") from None
    audit.record(
        db, user.username, "notification.target_delete", targets.audit_name(target),
        actor_user_id=user.user_id, **targets.audit_detail(target),
    )  # fmt: skip
    db.commit()
    notice = f"Destinataire « {target.label or targets.audit_name(target)} » retiré."
    return redirect_to(request, PAGE, form="targets", notice=notice)


@router.post(f"{PAGE}/thresholds", response_class=HTMLResponse)
def set_threshold(
    request: Request,
    db: Db,
    user: AdminUser,
    typed: SubmittedForm,
    site: Annotated[str, Form(max_length=sites.MAX_SITE)] = "",
    minutes: Annotated[str, Form(max_length=8)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    url = f"{PAGE}#delais-par-site"
    try:
        if not minutes.strip().isdigit():
            raise thresholds.ThresholdError("le délai est un nombre entier de minutes")
        row, before = thresholds.set_threshold(db, site, int(minutes))
    except thresholds.ThresholdError as exc:
        db.rollback()
        return redirect_to(request, url, form="threshold", error=str(exc), values=typed)
    audit.record(
        db, user.username, "site.threshold_set", row.site, actor_user_id=user.user_id,
        offline_after_min=row.offline_after_min, previous_offline_after_min=before,
    )  # fmt: skip
    db.commit()
    notice = f"Délai du site « {row.site} » : {row.offline_after_min} min."
    return redirect_to(request, url, form="thresholds", notice=notice, changed=row.site)


@router.post(f"{PAGE}/thresholds/delete")
def remove_threshold(
    request: Request,
    db: Db,
    user: AdminUser,
    site: Annotated[str, Form(max_length=sites.MAX_SITE)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    try:
        before = thresholds.remove(db, site)
    except thresholds.ThresholdNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Ce site n'a pas de délai propre.") from None
    audit.record(
        db, user.username, "site.threshold_remove", site, actor_user_id=user.user_id,
        previous_offline_after_min=before,
    )  # fmt: skip
    db.commit()
    notice = f"Le site « {site} » reprend le délai commun."
    return redirect_to(request, f"{PAGE}#delais-par-site", form="thresholds", notice=notice)
