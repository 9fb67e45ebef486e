"""The shared core's exceptions: one root, ``GuichetError``, small specific subclasses.

The counter and the server keep their own roots (``appliance.errors.ApplianceError``,
``fleet_server.errors.FleetError``) for what only they raise; what both sides raise for the
same reason is defined once here. ``ValueError`` is a mixin only where a pydantic validator
lets the error through as a field error (``MqttUrlError``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from guichet.documents import ErrorCode


class GuichetError(Exception):
    """Root of every error the shared core raises on purpose."""


class ContractError(GuichetError):
    """An MQTT topic or payload that does not follow the wire contract (``contract``)."""


class SignallingError(GuichetError):
    """A WebSocket message that does not follow the signalling contract (``signalling``)."""


class DocumentError(GuichetError):
    """A documents message refused, or a scan or print that cannot go on (``documents``):
    ``code`` for machines, ``message`` in French for the agent. Never carries document
    content."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


class CaptionError(GuichetError):
    """A caption message refused (``caption``). Never carries the text the agent typed."""


class EnrolmentError(GuichetError):
    """An enrolment refused or impossible, on either side (bad token, server unreachable,
    request rejected); the server's messages are French and safe to show."""


class ConfigFileError(GuichetError):
    """A TOML file that cannot be read, parsed or validated (``tomlmodel``); ``cause`` is the
    TOML or pydantic error, for a caller that words its own message."""

    def __init__(self, message: str, *, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class MqttUrlError(GuichetError, ValueError):
    """An ``mqtt://``/``mqtts://`` URL that cannot be used (``mqtt_url``); a ValueError so
    that a pydantic validator reports it as the field's error. ``reason``: what is wrong
    (``scheme``, ``host`` or ``port``), for a caller that words its own message."""

    def __init__(self, message: str, *, reason: Literal["scheme", "host", "port"]) -> None:
        super().__init__(message)
        self.reason = reason
