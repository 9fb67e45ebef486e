"""Temporary alias for ``guichet/demo.py`` until the demo's imports follow the move to
:mod:`fleet_server.security.auth` (the demo is being moved out of ``guichet/`` separately)."""

from fleet_server.security.auth import upsert_user as upsert_user
