"""The trial guard (image/layers/counter/files/guichet-trial-guard.sh), run for real with the
real tryboot backend on a temporary FAT and device tree; ``rauc`` and ``systemctl`` are small
scripts on PATH that note what they were asked (the guard's whole contact with them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

FILES = Path(__file__).parents[2] / "image/layers/counter/files"
GUARD = FILES / "guichet-trial-guard.sh"
BACKEND = FILES / "rauc-tryboot.sh"
FRESH = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"


class Card:
    def __init__(self, root: Path) -> None:
        self.fat, self.dt, self.bin = root / "fat", root / "dt", root / "bin"
        for d in (self.fat, self.dt, self.bin):
            d.mkdir()
        (self.fat / "autoboot.txt").write_text(FRESH)
        self.calls = root / "calls"
        self.calls.write_text("")
        for tool in ("rauc", "systemctl"):
            script = self.bin / tool
            script.write_text(
                f'#!/bin/sh\necho "{tool} $*" >>"{self.calls}"\n'
                f'if [ "$1" = is-active ]; then exit "${{AGENT_INACTIVE:-0}}"; fi\n'
            )
            script.chmod(0o755)

    def boot(self, partition: int, *, tryboot: bool) -> None:
        (self.dt / "partition").write_bytes(partition.to_bytes(4, "big"))
        (self.dt / "tryboot").write_bytes(int(tryboot).to_bytes(4, "big"))

    def guard(self, *, agent_runs: bool, grace_s: int = 1) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "GUICHET_AUTOBOOT_DIR": str(self.fat),
            "GUICHET_FIRMWARE_DT": str(self.dt),
            "GUICHET_TRYBOOT_BACKEND": str(BACKEND),
            "GUICHET_TRIAL_GUARD_S": str(grace_s),
            "GUICHET_TRIAL_GUARD_POLL_S": "1",
            "AGENT_INACTIVE": "0" if agent_runs else "3",
        }
        return subprocess.run(
            ["sh", str(GUARD)], capture_output=True, text=True, env=env, check=False, timeout=30
        )

    def asked(self) -> list[str]:
        return self.calls.read_text().splitlines()


@pytest.fixture
def card(tmp_path: Path) -> Card:
    return Card(tmp_path)


def test_a_plain_boot_is_left_alone(card: Card) -> None:
    card.boot(2, tryboot=False)
    done = card.guard(agent_runs=False)
    assert done.returncode == 0, done.stderr
    assert card.asked() == []


def test_a_trial_whose_agent_cannot_run_is_given_up(card: Card) -> None:
    # RAUC wrote B and made it primary; the firmware booted B once in tryboot.
    subprocess.run(["sh", str(BACKEND), "set-primary", "B"], check=True, env={
        "PATH": "/usr/bin:/bin", "GUICHET_AUTOBOOT_DIR": str(card.fat),
        "GUICHET_FIRMWARE_DT": str(card.dt)})  # fmt: skip
    card.boot(3, tryboot=True)
    done = card.guard(agent_runs=False)
    assert done.returncode == 0, done.stderr
    assert card.asked() == [
        "systemctl is-active --quiet guichet.service",
        "rauc status mark-bad booted",
        "systemctl reboot",
    ]
    assert "giving the trial up" in done.stdout
    # autoboot.txt untouched: the next boot is A's, the committed slot.
    assert (card.fat / "autoboot.txt").read_text() == FRESH


def test_a_trial_whose_agent_runs_is_left_to_its_health_gate(card: Card) -> None:
    card.boot(3, tryboot=True)
    done = card.guard(agent_runs=True)
    assert done.returncode == 0, done.stderr
    assert card.asked() == ["systemctl is-active --quiet guichet.service"]


def test_a_trial_committed_within_the_grace_is_left_alone(card: Card) -> None:
    card.boot(3, tryboot=True)
    # The agent's gate passed: B committed (autoboot.txt swapped, B good).
    (card.fat / "autoboot.txt").write_text(
        FRESH.replace("=2", "=x").replace("=3", "=2").replace("=x", "=3")
    )
    done = card.guard(agent_runs=False, grace_s=5)
    assert done.returncode == 0, done.stderr
    assert card.asked() == []
    assert "slot B committed" in done.stdout
