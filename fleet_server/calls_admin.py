"""Temporary alias for ``guichet/demo.py`` until the demo's imports follow the move to
:mod:`fleet_server.calls.admin` (the demo is being moved out of ``guichet/`` separately)."""

from fleet_server.calls.admin import new_call_token as new_call_token
from fleet_server.calls.admin import set_device_service as set_device_service
