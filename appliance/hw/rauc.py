"""The updater port over RAUC (``rauc`` from Debian, its service on the system bus;
docs/updates.md): installs through its D-Bus installer (``appliance.hw.rauc_dbus``: a local
bundle, or one streamed from the fleet server), and its command line for ``rauc status
--detailed --output-format=json``, ``rauc status mark-good|mark-bad booted``; and the Pi
firmware's one-shot trial boot, a reboot with the argument ``"0 tryboot"`` asked of logind
(``appliance.hw.logind``: systemctl would write the parameter's file itself, which only root
may).

The argv are built and RAUC's output read by small pure functions (``parse_status``,
``install_refusal``), tested against a real RAUC here; the processes run from the loop
(``asyncio`` subprocesses), never in a thread.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from appliance.hw.logind import RebootRefusedError, reboot_with_parameter
from appliance.hw.ports.updater import (
    Bootname,
    BundleSource,
    InstallProgress,
    RemoteBundle,
    SlotStatus,
    UpdateRefusedError,
    UpdaterError,
)
from appliance.hw.rauc_dbus import dbus_install
from appliance.hw.tools import run_tool

logger = logging.getLogger(__name__)

INSTALL_TIMEOUT_S = 3600.0  # a 400 MB slot on a slow SD card takes minutes; never hang forever
STATUS_TIMEOUT_S = 30.0  # RAUC asks the bootloader backend for each slot: a few scripts
REBOOT_TIMEOUT_S = 10.0
ROOT_CLASS = "rootfs"  # the slots that carry a bootname (system.conf: rootfs.0, rootfs.1)
# The Pi 4 EEPROM that knows autoboot.txt's [tryboot] and tryboot_a_b: pieeprom-2022-11-25
# (docs/updates.md, « The firmware tryboot needs »); the firmware tells its build time in the
# device tree, 32-bit big-endian seconds.
TRYBOOT_EEPROM_EPOCH = 1669334400  # 2022-11-25 00:00 UTC
BOOTLOADER_DT = Path("/proc/device-tree/chosen/bootloader")
TRYBOOT_ARG = "0 tryboot"  # reboot(2)'s argument: partition 0 (autoboot.txt decides), tryboot
_REFUSALS = (  # RAUC's words → what the administrator reads
    (
        "signature verification failed",
        "Signature refusée : ce paquet n'est pas signé par l'autorité de mise à jour du Pays.",
    ),
    ("compatible mismatch", "Paquet refusé : il est fait pour un autre système."),
    ("no space left", "Place insuffisante sur la carte SD pour installer la version."),
    ("already in progress", "Une installation est déjà en cours sur le guichet."),
)


def status_argv(rauc: str) -> list[str]:
    return [rauc, "status", "--detailed", "--output-format=json"]


def mark_argv(rauc: str, *, good: bool) -> list[str]:
    return [rauc, "status", "mark-good" if good else "mark-bad", "booted"]


def bootloader_refusal(dt: Path) -> str | None:
    """A Pi bootloader older than tryboot's (French), or None (recent, or not told)."""
    try:
        raw = (dt / "build-timestamp").read_bytes()
    except OSError:
        return None
    if len(raw) < 4:
        return None
    built = int.from_bytes(raw[:4], "big")
    if built >= TRYBOOT_EEPROM_EPOCH:
        return None
    day = datetime.fromtimestamp(built, UTC).strftime("%d/%m/%Y")
    return (f"Refusée : le chargeur de démarrage du Raspberry Pi (EEPROM du {day}) ne connaît"
            " pas les essais de démarrage ; il faut celui du 25/11/2022 ou plus récent"
            " (voir docs/technicien.md).")  # fmt: skip


def install_error(output: str) -> UpdaterError:
    """RAUC's failed install → the error: ``UpdateRefusedError`` when trying again cannot help."""
    sentence = install_refusal(output)
    lowered = output.lower()
    final = any(words in lowered for words, _ in _REFUSALS)
    return UpdateRefusedError(sentence) if final else UpdaterError(sentence)


def install_refusal(output: str) -> str:
    """RAUC's failed install output → one French sentence (RAUC's last words kept short)."""
    lowered = output.lower()
    for words, sentence in _REFUSALS:
        if words in lowered:
            return sentence
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if "error" in line.lower()), None)
    last = last or (lines[-1] if lines else "sans message")
    return f"Installation refusée par RAUC : {last[:300]}"


def parse_status(text: str) -> SlotStatus:
    """``rauc status --detailed --output-format=json`` → SlotStatus. The booted slot is the
    one whose ``state`` is ``booted``: RAUC's top-level ``booted`` repeats what the kernel's
    command line said — a bootname with ``rauc.slot=`` (or ``--override-boot-slot``), but
    ``PARTUUID=…`` with the Pi's ``root=`` (trixie's RAUC 1.14 in qemu), whichever slot that
    is. The primary is named by its slot name; both become A/B here."""
    try:
        data = json.loads(text)
        slots = {name: fields for entry in data["slots"] for name, fields in entry.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UpdaterError(f"état de RAUC illisible ({exc})") from None
    bootnames: dict[str, Bootname] = {}
    good: dict[str, bool] = {}
    versions: dict[str, str] = {}
    for name, fields in slots.items():
        bootname = fields.get("bootname")
        if fields.get("class") != ROOT_CLASS or bootname not in ("A", "B"):
            continue
        bootnames[name] = cast(Bootname, bootname)
        good[bootname] = fields.get("boot_status") == "good"
        bundle = (fields.get("slot_status") or {}).get("bundle") or {}
        if isinstance(bundle.get("version"), str):
            versions[bootname] = bundle["version"]
    booted_name = _booted(data.get("booted"), slots, bootnames)
    return SlotStatus(
        booted=booted_name,
        primary=bootnames.get(data.get("boot_primary") or ""),
        booted_good=good.get(booted_name or "", False),
        versions=versions,
    )


def _booted(
    said: object, slots: dict[str, dict[str, object]], bootnames: dict[str, Bootname]
) -> Bootname | None:
    """The root slot RAUC found booted; else the bootname the command line gave, if one."""
    for name, fields in slots.items():
        if fields.get("state") == "booted" and name in bootnames:
            return bootnames[name]
    return said if said in ("A", "B") else None


class RaucUpdater:
    """``Updater`` through the ``rauc`` command (the service does the work, as root)."""

    def __init__(self, rauc: str = "rauc", bootloader_dt: Path = BOOTLOADER_DT) -> None:
        self._rauc = rauc
        self._bootloader_dt = bootloader_dt

    def unsupported(self) -> str | None:
        return bootloader_refusal(self._bootloader_dt)

    def _tool(self, name: str, what: str) -> str:
        path = shutil.which(name)
        if path is None:
            raise UpdaterError(f"{what} est absent du guichet")
        return path

    async def install(self, bundle: BundleSource, progress: InstallProgress) -> None:
        """Through RAUC's D-Bus installer (``appliance.hw.rauc_dbus``): a URL is streamed."""
        await dbus_install(bundle, progress, install_error, INSTALL_TIMEOUT_S)
        logger.info("bundle installed", extra={"bundle": _shown(bundle)})

    async def status(self) -> SlotStatus:
        run = await self._run(status_argv(self._tool(self._rauc, "Le programme rauc")))
        return parse_status(run)

    async def mark_good(self) -> None:
        await self._run(mark_argv(self._tool(self._rauc, "Le programme rauc"), good=True))

    async def mark_bad(self) -> None:
        await self._run(mark_argv(self._tool(self._rauc, "Le programme rauc"), good=False))

    async def reboot_into_trial(self) -> None:
        try:
            await reboot_with_parameter(TRYBOOT_ARG, REBOOT_TIMEOUT_S)
        except TimeoutError:
            raise UpdaterError("le système n'a pas répondu à la demande de redémarrage") from None
        except (RebootRefusedError, OSError, ValueError) as exc:  # refused, no bus, no logind
            raise UpdaterError(f"redémarrage refusé : {str(exc)[:200]}") from None
        logger.warning("reboot into the trial slot ordered")

    async def _run(self, argv: list[str]) -> str:
        try:
            run = await run_tool(argv, timeout_s=STATUS_TIMEOUT_S)
        except TimeoutError:
            raise UpdaterError("RAUC n'a pas répondu") from None
        if not run.ok:
            reason = run.reason(last=True) or "sans message"
            raise UpdaterError(f"RAUC a refusé « {' '.join(argv[1:])} » : {reason[:300]}")
        return run.stdout.decode(errors="replace")


def _shown(bundle: BundleSource) -> str:
    """For the journal: a file's path or a URL's (never its credentials)."""
    return bundle.url if isinstance(bundle, RemoteBundle) else str(bundle)
