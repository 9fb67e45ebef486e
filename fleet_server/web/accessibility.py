"""The accessibility statement (« Déclaration d'accessibilité », RGAA 4.1), public.

Every page's footer links to it with the compliance state, as the RGAA asks. What it says
about the audit — the pages audited, the axe-core version, the result — is kept here, and
``tests/e2e/test_accessibility_browser.py`` checks it against the audit it runs: a page added
to the app and not to ``AUDITED_PAGES``, or a new axe-core, fails that test until this
statement says so (docs/accessibility.md).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from fleet_server.models import User
from fleet_server.security.auth import principal_of
from fleet_server.web.deps import Ctx, render, session_user
from fleet_server.web.format import ACCESSIBILITY_COMPLIANCE

router = APIRouter(include_in_schema=False)

STATEMENT_DATE: Final = date(2026, 12, 7)
AXE_CORE_VERSION: Final = "4.12.1"  # the copy bundled in axe-playwright-python
# Every page, by route, with the name the statement gives it (the audit visits each of them
# as each role that may see it, and anonymously).
AUDITED_PAGES: Final[dict[str, str]] = {
    "/login": "Connexion",
    "/login/totp": "Connexion : code du second facteur",
    "/": "Flotte (tableau de bord) ; guichets du site pour l'accueil",
    "/alerts": "Alertes",
    "/devices/{device_id}": "Page d'un guichet",
    "/devices/{device_id}/logs/{logs_id}": "Journaux d'un guichet (assistance à distance)",
    "/calls": "Journal des appels",
    "/statistiques": "Statistiques",
    "/agent": "Console des agents (hors appel ; en appel : voir ci-dessous)",
    "/reception": "Accueil : rendez-vous du site",
    "/admin/services": "Administration : services",
    "/admin/schedules": "Administration : horaires",
    "/admin/questionnaire": "Administration : questionnaire",
    "/admin/enrolment": "Administration : enrôlement des guichets",
    "/admin/users": "Administration : utilisateurs",
    "/admin/audit": "Administration : journal d'audit",
    "/admin/notifications": "Administration : notifications des alertes",
    "/admin/versions": "Administration : mises à jour du logiciel",
    "/admin/rollouts/{rollout_id}": "Administration : un déploiement de mise à jour",
    "/account/totp": "Mon compte : second facteur",
    "/api/v1/docs": "Documentation de l'API",
    "/accessibilite": "Déclaration d'accessibilité",
}


@router.get("/accessibilite", response_class=HTMLResponse)
def statement(
    request: Request, ctx: Ctx, user: Annotated[User | None, Depends(session_user)]
) -> Response:
    principal = principal_of(user) if user is not None else None
    context = {
        "compliance": ACCESSIBILITY_COMPLIANCE,
        "statement_date": STATEMENT_DATE,
        "axe_version": AXE_CORE_VERSION,
        "pages": AUDITED_PAGES,
        "operator": ctx.settings.operator_name,
        "contact": ctx.settings.accessibility_contact,
    }
    return render(request, "accessibility.html", context, principal=principal)
