"""Administrators manage users (``/admin/users``): create, change role, reset a password,
deactivate, remove a second factor. Every change is in the audit log; no password is. Every
form answers by post/redirect/get (``deps.redirect_to``): its message next to the user's row
or the new-user form, which comes back filled in (never with the password)."""

from __future__ import annotations

import logging
from typing import Annotated

from anyio import from_thread
from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from fleet_server.calls import admin as calls_admin
from fleet_server.models import Service, User
from fleet_server.security import audit, auth, sites
from fleet_server.security.roles import ROLE_LABELS, Role
from fleet_server.web.deps import (
    AdminUser,
    AppContext,
    Ctx,
    Db,
    SubmittedForm,
    redirect_to,
    render,
)
from fleet_server.web.flash import FormValues
from fleet_server.web.signalling_ws import CLOSE_UNAUTHORIZED

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

RoleField = Annotated[str, Form(max_length=16)]
OptionalField = Annotated[str, Form(max_length=128)]


PAGE = "/admin/users"
NEW_USER = "new-user"  # the creation form; a user's row is ``user-<id>``


def _page(request: Request, db: Db, user: AdminUser) -> Response:
    users = db.scalars(select(User).order_by(User.username)).all()
    context = {
        "section": "users",
        "users": users,
        "roles": ROLE_LABELS,
        "services": calls_admin.services(db),
        "sites": sites.known_sites(db),
        "username_pattern": auth.USERNAME_PATTERN,
    }
    response = render(request, "users.html", context, principal=user)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(
    request: Request, form: str, exc: Exception, typed: FormValues | None = None
) -> Response:
    url = f"{PAGE}#{'nouvel-utilisateur' if form == NEW_USER else form}"
    return redirect_to(request, url, form=form, error=str(exc), values=typed)


def _done(request: Request, form: str, notice: str) -> Response:
    return redirect_to(request, f"{PAGE}#{form}", form=form, notice=notice, changed=form)


def _scope(db: Db, role: str, service: str, site: str) -> tuple[str | None, str | None]:
    """The (service, site) a role keeps: an agent's service, a reception user's site — one
    where counters are (or are being) installed, or the user would see nothing."""
    service_code = service.strip() if role == Role.AGENT else ""
    if service_code and db.get(Service, service_code) is None:
        raise auth.AuthError(f"service inconnu « {service_code} »")
    site_name = site.strip() if role == Role.RECEPTION else ""
    if site_name and site_name not in sites.known_sites(db):
        raise auth.AuthError(
            f"aucun guichet n'est installé sur le site « {site_name} » : choisissez un site"
            " de la liste"
        )
    return service_code or None, site_name or None


def _user(db: Db, user_id: int) -> User:
    row = db.get(User, user_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Utilisateur inconnu")
    return row


def _cut_off(ctx: AppContext, user_id: int) -> None:
    """After the commit: the user's live consoles close now (the route runs in a worker
    thread; the call manager lives on the event loop)."""
    from_thread.run_sync(ctx.calls.drop_agent, user_id, CLOSE_UNAUTHORIZED, "session terminée")


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, db: Db, user: AdminUser) -> Response:
    return _page(request, db, user)


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    db: Db,
    user: AdminUser,
    typed: SubmittedForm,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    role: RoleField,
    service: OptionalField = "",
    site: OptionalField = "",
) -> Response:
    name = username.strip()
    try:
        if db.scalar(select(User.id).where(User.username == name)) is not None:
            raise auth.AuthError(f"l'identifiant « {name} » existe déjà")
        service_code, site_name = _scope(db, role, service, site)
        auth.check_role(role, service_code, site_name)
        auth.upsert_user(db, name, password, role=role, service=service_code, site=site_name)
    except auth.AuthError as exc:
        db.rollback()
        return _refused(request, NEW_USER, exc, typed)
    audit.record(
        db, user.username, "user.create", name, actor_user_id=user.user_id,
        role=role, service=service_code, site=site_name,
    )  # fmt: skip
    db.commit()
    created = db.scalar(select(User.id).where(User.username == name))
    return _done(request, f"user-{created}", f"Utilisateur « {name} » créé.")


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
def update_user(
    request: Request,
    user_id: int,
    ctx: Ctx,
    db: Db,
    user: AdminUser,
    typed: SubmittedForm,
    role: RoleField,
    service: OptionalField = "",
    site: OptionalField = "",
) -> Response:
    row = _user(db, user_id)
    try:
        if row.id == user.user_id and role != Role.ADMIN:
            raise auth.AuthError("vous ne pouvez pas retirer votre propre rôle d'administrateur")
        service_code, site_name = _scope(db, role, service, site)
        auth.check_role(role, service_code, site_name)
    except auth.AuthError as exc:
        return _refused(request, f"user-{row.id}", exc, typed)
    rescoped = (row.role, row.service, row.site) != (role, service_code, site_name)
    if rescoped:
        auth.end_user_sessions(db, row.id)  # what they may see changed: log in again
    row.role, row.service, row.site = role, service_code, site_name
    if role != Role.ADMIN:
        row.totp_secret = None  # the second factor is for administrators
    audit.record(
        db, user.username, "user.update", row.username, actor_user_id=user.user_id,
        role=role, service=service_code, site=site_name,
    )  # fmt: skip
    db.commit()
    if rescoped:
        _cut_off(ctx, row.id)
    return _done(request, f"user-{row.id}", f"« {row.username} » : modifications enregistrées.")


@router.post("/admin/users/{user_id}/password", response_class=HTMLResponse)
def reset_password(
    request: Request,
    user_id: int,
    ctx: Ctx,
    db: Db,
    user: AdminUser,
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    row = _user(db, user_id)
    try:
        auth.set_password(row, password)
    except auth.AuthError as exc:
        return _refused(request, f"user-{row.id}", exc)  # nothing kept: a password
    auth.end_user_sessions(db, row.id)
    audit.record(db, user.username, "user.password_reset", row.username, actor_user_id=user.user_id)
    db.commit()
    _cut_off(ctx, row.id)
    return _done(request, f"user-{row.id}", f"Mot de passe de « {row.username} » réinitialisé.")


@router.post("/admin/users/{user_id}/active", response_class=HTMLResponse)
def set_active(
    request: Request,
    user_id: int,
    ctx: Ctx,
    db: Db,
    user: AdminUser,
    active: Annotated[str, Form(max_length=8)],
) -> Response:
    row = _user(db, user_id)
    if row.id == user.user_id:
        refusal = auth.AuthError("vous ne pouvez pas vous désactiver vous-même")
        return _refused(request, f"user-{row.id}", refusal)
    row.active = active == "1"
    if not row.active:
        auth.end_user_sessions(db, row.id)
    action = "user.activate" if row.active else "user.deactivate"
    audit.record(db, user.username, action, row.username, actor_user_id=user.user_id)
    db.commit()
    if not row.active:
        _cut_off(ctx, row.id)
    state = "réactivé" if row.active else "désactivé"
    return _done(request, f"user-{row.id}", f"Compte « {row.username} » {state}.")


@router.post("/admin/users/{user_id}/totp-reset", response_class=HTMLResponse)
def reset_totp(request: Request, user_id: int, db: Db, user: AdminUser) -> Response:
    row = _user(db, user_id)
    if row.totp_secret is not None:
        row.totp_secret = None
        auth.end_user_sessions(db, row.id)  # a stolen session must not outlive the reset
        audit.record(
            db, user.username, "user.totp_disable", row.username, actor_user_id=user.user_id
        )
        db.commit()
    notice = f"Double authentification de « {row.username} » retirée."
    return _done(request, f"user-{row.id}", notice)
