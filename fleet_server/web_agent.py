"""The agent console (``/agent``): the page; its script ``static/agent.js`` does the rest over
``/ws/agent``. An agent sees their own service; an administrator picks one to watch."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fleet_server import calls_admin
from fleet_server.models import Service, User
from fleet_server.web_deps import AccessDeniedError, AgentUser, Db, render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


@router.get("/agent", response_class=HTMLResponse)
def agent_console(request: Request, db: Db, user: AgentUser, service: str = "") -> Response:
    if user.role == "agent":
        row = db.get(User, user.user_id)
        own = row.service or "" if row is not None else ""
        if service and service != own:
            raise AccessDeniedError("Cette console est celle d'un autre service.")
        service = own
    chosen = db.get(Service, service) if service else None
    context = {
        "section": "agent",
        "service": chosen,
        "services": calls_admin.services(db),
        "watch_only": user.role != "agent",
        "ws_path": "/ws/agent"
        + (f"?service={chosen.code}" if user.role != "agent" and chosen else ""),
    }
    response = render(request, "agent.html", context, principal=user)
    response.headers["Cache-Control"] = "no-store"
    return response
