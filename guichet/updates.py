"""Software updates on the wire (issue 13, docs/updates.md): what a counter's update is doing,
the server's order to install a release, and how release versions compare.

Pure and shared. The order travels as a ``contract.Command`` named ``update`` whose ``args``
are an :class:`UpdateOrder` (``to_args`` / ``from_args``); the counter's progress travels as
``contract.UpdateProgress`` on its own kind (``contract.Kind.UPDATE``), whose ``state`` is an
:class:`UpdateState`. This module imports nothing from ``guichet.contract`` (the contract
imports it), so the order is converted from and to a plain ``args`` mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guichet.errors import ContractError
from guichet.messages import first_error

UPDATE_COMMAND = "update"  # the ``Command.name`` of an order
COMPATIBLE = "guichet-proche-rpi-arm64"  # RAUC's compatible string: the counters' system
ARCHITECTURE = "arm64"
PROGRESS_INTERVAL_S = 5.0  # a counter reports progress at most this often (and on each change)
HEALTH_GATE_S = 600  # after the tryboot: online with the fleet and self-test passed, or roll back
VERSION_MAX_CHARS = 64
REASON_MAX_CHARS = 512
# 1.4, 1.4.2, 2026.12.1, 1.5.0-rc1: dotted numbers, then an optional pre-release label.
VERSION_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,9}){0,3}(-[0-9A-Za-z][0-9A-Za-z.]{0,30})?$"
_VERSION_RE = re.compile(VERSION_PATTERN)
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class UpdateState(StrEnum):
    """What a counter's update is doing (``UpdateProgress.state``)."""

    IDLE = "idle"  # no update under way
    DOWNLOADING = "downloading"  # percent: of the bundle fetched
    INSTALLING = "installing"  # percent: of the inactive slot written
    INSTALLED = "installed"  # the inactive slot is written; the reboot waits (a call, an opening)
    REBOOTING = "rebooting"  # tryboot into the new slot
    COMMITTED = "committed"  # the health gate passed: the new slot is the default
    ROLLED_BACK = "rolled_back"  # the health gate failed: back on the old slot (reason)
    FAILED = "failed"  # nothing was changed: download, signature, space, busy (reason)


UPDATE_STATE_LABELS: dict[UpdateState, str] = {  # French: dashboard, counter page, API
    UpdateState.IDLE: "À jour",
    UpdateState.DOWNLOADING: "Téléchargement",
    UpdateState.INSTALLING: "Installation",
    UpdateState.INSTALLED: "Installée, en attente de redémarrage",
    UpdateState.REBOOTING: "Redémarrage",
    UpdateState.COMMITTED: "Validée",
    UpdateState.ROLLED_BACK: "Annulée, retour à la version précédente",
    UpdateState.FAILED: "Échec",
}
# The end of one release on one counter: nothing more will happen without a new order.
TERMINAL: frozenset[UpdateState] = frozenset(
    {UpdateState.COMMITTED, UpdateState.ROLLED_BACK, UpdateState.FAILED}
)
# Counted against a rollout's error threshold.
FAILURES: frozenset[UpdateState] = frozenset({UpdateState.ROLLED_BACK, UpdateState.FAILED})
# Sent with a French ``reason`` (the others may carry one too).
NEEDS_REASON: frozenset[UpdateState] = FAILURES


def is_valid_version(version: str) -> bool:
    return _VERSION_RE.fullmatch(version) is not None


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """A sort key: numbers compared one by one (1.10 > 1.9; 1.4 == 1.4.0), and a pre-release
    (``1.5.0-rc1``) before its release. Raises ContractError for anything else."""
    if not is_valid_version(version):
        raise ContractError(f"invalid version {version!r}")
    numbers, _, pre = version.partition("-")
    parts = [int(n) for n in numbers.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts), (0 if pre else 1), pre


def is_newer(version: str, than: str) -> bool:
    return version_key(version) > version_key(than)


class UpdateOrder(BaseModel):
    """The ``update`` command's arguments: which release, where to fetch it and how to know
    it is the right file. The counter fetches ``bundle_url`` over HTTPS with its own
    credentials; RAUC checks the signature and ``compatible`` again before installing."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    release: str = Field(max_length=VERSION_MAX_CHARS, pattern=VERSION_PATTERN)
    bundle_url: str = Field(max_length=1024, pattern=r"^https://[^\s]+$")
    size: int = Field(gt=0, le=8 * 1024**3)
    sha256: str = Field(pattern=SHA256_PATTERN)
    compatible: str = Field(max_length=128)

    def to_args(self) -> dict[str, str | int]:
        return dict(self.model_dump(mode="json"))

    @classmethod
    def from_args(cls, args: Mapping[str, object]) -> UpdateOrder:
        """Read a command's ``args``; raises ContractError with a short reason."""
        try:
            return cls.model_validate(dict(args))
        except ValidationError as exc:
            where, message = first_error(exc, top="args")
            raise ContractError(f"invalid update order: {where}: {message}") from None
