"""Temporary alias for ``guichet/demo.py`` until the demo's imports follow the move to
:mod:`fleet_server.scheme.schedules` (the demo is being moved out of ``guichet/`` separately)."""

from fleet_server.scheme.schedules import public_holiday as public_holiday
