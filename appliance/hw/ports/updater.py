"""The counter's system updater (issue 13, docs/updates.md): install a bundle to the inactive
root slot, say which slot booted and whether it is committed, commit or give up the trial.

The adapter is RAUC (``appliance.hw.rauc``: its D-Bus installer, its command line for the
rest); ``SimulatedUpdater`` is the fake for the demo and the tests (RAUC's slots are a
Raspberry Pi's partitions). A bundle is a local file, or a ``RemoteBundle`` RAUC streams from
the fleet server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from appliance.errors import HardwareError

Bootname = Literal["A", "B"]
# percent 0-100 and RAUC's words for the step (English, for the journal)
InstallProgress = Callable[[int, str], None]


class UpdaterError(HardwareError):
    """The updater refused or failed; the message is French, for the administrator."""


class UpdateRefusedError(UpdaterError):
    """Final: the same bundle would be refused again (signature, compatible, space)."""


@dataclass(frozen=True, slots=True)
class RemoteBundle:
    """A bundle the updater reads over HTTPS as it installs (HTTP range requests), with the
    counter's credentials (basic authentication) and the CA that signed the server's
    certificate (None: the system's)."""

    url: str
    username: str | None
    password: str | None = field(repr=False)
    ca_file: Path | None

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


BundleSource = Path | RemoteBundle


@dataclass(frozen=True, slots=True)
class SlotStatus:
    """What the updater says of the system: the slot booted (``A``/``B``, None off a counter
    with slots), the slot the next boot is meant for, whether the booted one is committed
    (RAUC's boot state ``good``), and the version of the bundle installed in each slot."""

    booted: Bootname | None
    primary: Bootname | None
    booted_good: bool
    versions: dict[str, str] = field(default_factory=dict)  # bootname → bundle version

    @property
    def booted_version(self) -> str | None:
        return self.versions.get(self.booted) if self.booted is not None else None

    @property
    def on_trial(self) -> bool:
        """Booted from a slot that is not committed yet: the health gate decides."""
        return self.booted is not None and not self.booted_good


@runtime_checkable
class Updater(Protocol):
    async def install(self, bundle: BundleSource, progress: InstallProgress) -> None:
        """Write ``bundle`` (a file, or streamed from a URL) to the inactive slot and make it
        the next boot's (a trial: the counter must reboot with tryboot). Raises
        ``UpdaterError`` (signature, compatible, space, the line…) having changed nothing the
        running system uses."""
        ...

    async def status(self) -> SlotStatus: ...

    def unsupported(self) -> str | None:
        """Why this box cannot take updates at all (French), e.g. a Pi bootloader too old
        for tryboot; None when it can or cannot tell."""
        ...

    async def mark_good(self) -> None:
        """Commit the booted slot: the firmware boots it by default from now on."""
        ...

    async def mark_bad(self) -> None:
        """Give up the booted trial: the next plain reboot goes back to the committed slot."""
        ...

    async def reboot_into_trial(self) -> None:
        """Reboot once into the slot ``install`` wrote (the Pi firmware's tryboot); returns
        once the system has taken the order."""
        ...


class SimulatedUpdater:
    """Two slots in memory; ``install`` writes the other slot; ``reboot_into_trial`` counts the
    orders (``trial_reboots``), ``firmware_boots_trial`` and ``firmware_boots_plain`` play the
    firmware after a tryboot and a plain reboot. ``refusal`` makes install fail."""

    def __init__(self, *, booted: Bootname = "A", version: str = "1.0") -> None:
        self.committed: Bootname = booted
        self.booted: Bootname = booted
        self.trial: Bootname | None = None  # made primary, not committed
        self.good: dict[str, bool] = {booted: True, _other(booted): False}
        self.versions: dict[str, str] = {booted: version}
        self.refusal: str | None = None
        self.installed: list[BundleSource] = []
        self.next_version: str | None = None  # the version install writes (default: the name)
        self.trial_reboots = 0
        self.unsupported_because: str | None = None

    def unsupported(self) -> str | None:
        return self.unsupported_because

    async def install(self, bundle: BundleSource, progress: InstallProgress) -> None:
        if self.refusal is not None:
            raise UpdaterError(self.refusal)
        target = _other(self.booted)
        self.good[target] = False
        for percent in (0, 40, 80, 100):
            progress(percent, "Installing")
        self.installed.append(bundle)
        name = bundle.name if isinstance(bundle, RemoteBundle) else bundle.stem
        self.versions[target] = self.next_version or name
        self.trial = target

    async def status(self) -> SlotStatus:
        primary = self.trial if self.trial not in (None, self.booted) else self.committed
        return SlotStatus(
            booted=self.booted,
            primary=primary,
            booted_good=self.good[self.booted],
            versions=dict(self.versions),
        )

    async def mark_good(self) -> None:
        self.good[self.booted] = True
        self.committed = self.booted
        self.trial = None

    async def mark_bad(self) -> None:
        self.good[self.booted] = False
        if self.trial == self.booted:
            self.trial = None

    async def reboot_into_trial(self) -> None:
        if self.refusal is not None:
            raise UpdaterError(self.refusal)
        self.trial_reboots += 1

    def firmware_boots_trial(self) -> None:
        if self.trial is None:
            raise AssertionError("no trial to boot")
        self.booted = self.trial

    def firmware_boots_plain(self) -> None:
        self.booted = self.committed


def _other(slot: Bootname) -> Bootname:
    return "B" if slot == "A" else "A"
