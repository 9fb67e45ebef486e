"""Who a user is to the fleet server: the roles and their French names."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Role(StrEnum):
    """A user's role (``User.role``); what each may see is in :mod:`fleet_server.web.deps`."""

    ADMIN = "admin"
    AGENT = "agent"
    RECEPTION = "reception"
    AUDITOR = "auditor"


ROLE_LABELS: Final[dict[str, str]] = {  # in the order the users page offers them
    Role.ADMIN: "Administrateur",
    Role.RECEPTION: "Accueil",
    Role.AGENT: "Agent",
    Role.AUDITOR: "Auditeur",
}
DASHBOARD_ROLES: Final = frozenset({Role.ADMIN, Role.AUDITOR})  # who may see the fleet dashboard
