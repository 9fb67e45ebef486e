"""The updater's RAUC adapter (appliance/hw/rauc.py) against a real RAUC: its service on a
private D-Bus session bus, file-backed raw slots, the image's tryboot backend script
(image/layers/counter/files/rauc-tryboot.sh) on a directory standing for the first FAT, and
real bundles signed by a throwaway CA. Bundles here are RAUC's ``plain`` format: the
counter's are ``verity``, which needs device-mapper, absent from this machine (the signature
and manifest checks before it are the same)."""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.hw.dbus import bus_kind
from appliance.hw.ports import RemoteBundle, UpdateRefusedError, UpdaterError
from appliance.hw.rauc import (
    RaucUpdater,
    bootloader_refusal,
    install_error,
    install_refusal,
    parse_status,
)
from appliance.hw.rauc_dbus import _Relay, install_call, progress_of
from guichet.updates import COMPATIBLE
from tests.appliance.logind_stand_in import LogindStandIn

BACKEND = Path(__file__).parents[2] / "image/layers/counter/files/rauc-tryboot.sh"
FRESH = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ca(where: Path, name: str) -> tuple[Path, Path]:
    where.mkdir(parents=True)
    key, cert = where / "key.pem", where / "cert.pem"
    _run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", key, "-out", cert, "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:true",
        "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
    )  # fmt: skip
    return key, cert


def _bundle(where: Path, signer: tuple[Path, Path], version: str, compatible: str) -> Path:
    root, content = where / f"root-{version}", where / f"content-{version}-{compatible}"
    root.mkdir()
    content.mkdir()
    (root / "blob").write_bytes(random.Random(version).randbytes(64 * 1024))
    _run("mksquashfs", root, content / "rootfs.img", "-quiet", "-noappend")
    (content / "manifest.raucm").write_text(
        f"[update]\ncompatible={compatible}\nversion={version}\n\n"
        "[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.img\n",
        encoding="utf-8",
    )
    bundle = where / f"{version}-{compatible}-{signer[1].parent.name}.raucb"
    _run("rauc", "bundle", f"--cert={signer[1]}", f"--key={signer[0]}", content, bundle)
    return bundle


@dataclass
class Counter:
    """A RAUC service over two file slots; ``boot`` restarts it as the firmware would boot."""

    tmp: Path
    env: dict[str, str]
    service: subprocess.Popen[bytes] | None = None

    def boot(self, partition: int, *, tryboot: bool, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stop()
        dt = self.tmp / "dt"
        dt.mkdir(exist_ok=True)
        (dt / "partition").write_bytes(partition.to_bytes(4, "big"))
        (dt / "tryboot").write_bytes(int(tryboot).to_bytes(4, "big"))
        slot = {2: "A", 3: "B"}[partition]
        # RAUC 1.8 (this machine) does not ask the backend's get-current yet (1.11 does);
        # the slot is told as the Pi's cmdline would tell it.
        self.service = subprocess.Popen(
            ["rauc", "service", f"--conf={self.tmp / 'system.conf'}",
             f"--override-boot-slot={slot}"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _run("gdbus", "wait", "--session", "--timeout=30", "de.pengutronix.rauc", env=self.env)
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)

    def stop(self) -> None:
        if self.service is not None:
            self.service.terminate()
            self.service.wait()
            self.service = None


@pytest.fixture
def counter(tmp_path: Path, private_bus: str) -> Iterator[Counter]:
    fat, data = tmp_path / "fat", tmp_path / "data"
    fat.mkdir()
    (fat / "autoboot.txt").write_text(FRESH)
    _, cert = _ca(tmp_path / "pays", "Pays")
    for slot in ("a", "b"):
        (tmp_path / f"{slot}.img").write_bytes(b"\0" * 1024 * 1024)
    (tmp_path / "system.conf").write_text(
        f"[system]\ncompatible={COMPATIBLE}\nbootloader=custom\n"
        f"mountprefix={tmp_path / 'mnt'}\ndata-directory={data}\n\n"
        f"[handlers]\nbootloader-custom-backend={BACKEND}\n\n"
        f"[keyring]\npath={cert}\n\n"
        f"[slot.rootfs.0]\ndevice={tmp_path / 'a.img'}\ntype=raw\nbootname=A\n\n"
        f"[slot.rootfs.1]\ndevice={tmp_path / 'b.img'}\ntype=raw\nbootname=B\n",
        encoding="utf-8",
    )
    env = {
        "PATH": os.environ["PATH"],
        "DBUS_SESSION_BUS_ADDRESS": private_bus,
        "DBUS_STARTER_BUS_TYPE": "session",
        "GUICHET_AUTOBOOT_DIR": str(fat),
        "GUICHET_FIRMWARE_DT": str(tmp_path / "dt"),
    }
    running = Counter(tmp_path, env)
    try:
        yield running
    finally:
        running.stop()


async def test_install_trial_and_commit_through_rauc(
    counter: Counter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BACKEND.stat().st_mode & 0o111, "RAUC runs the backend itself: it must be executable"
    bundle = _bundle(tmp_path, (tmp_path / "pays/key.pem", tmp_path / "pays/cert.pem"),
                     "1.5.0", COMPATIBLE)  # fmt: skip
    counter.boot(2, tryboot=False, monkeypatch=monkeypatch)
    updater = RaucUpdater()
    before = await updater.status()
    assert (before.booted, before.primary, before.booted_good) == ("A", "A", True)
    steps: list[tuple[int, str]] = []
    await updater.install(bundle, lambda percent, step: steps.append((percent, step)))
    assert steps[-1] == (100, "Installing done.")
    assert [p for p, _ in steps] == sorted(p for p, _ in steps)
    assert any("rootfs.1" in step for _, step in steps)
    after = await updater.status()
    assert (after.booted, after.primary, after.booted_good) == ("A", "B", True)
    assert after.versions == {"B": "1.5.0"}
    assert (tmp_path / "fat/autoboot.txt").read_text() == FRESH  # a trial, not a switch

    counter.boot(3, tryboot=True, monkeypatch=monkeypatch)  # reboot "0 tryboot"
    trial = await updater.status()
    assert (trial.booted, trial.primary, trial.on_trial) == ("B", "A", True)
    assert trial.booted_version == "1.5.0"
    await updater.mark_good()
    committed = await updater.status()
    assert (committed.booted, committed.primary, committed.on_trial) == ("B", "B", False)
    assert "boot_partition=3\n[tryboot]" in (tmp_path / "fat/autoboot.txt").read_text()


async def test_a_trial_given_up_returns_to_a(
    counter: Counter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _bundle(tmp_path, (tmp_path / "pays/key.pem", tmp_path / "pays/cert.pem"),
                     "1.5.0", COMPATIBLE)  # fmt: skip
    counter.boot(2, tryboot=False, monkeypatch=monkeypatch)
    updater = RaucUpdater()
    await updater.install(bundle, lambda _p, _s: None)
    counter.boot(3, tryboot=True, monkeypatch=monkeypatch)
    await updater.mark_bad()
    gave_up = await updater.status()
    assert (gave_up.booted, gave_up.primary, gave_up.booted_good) == ("B", "A", False)
    assert (tmp_path / "fat/autoboot.txt").read_text() == FRESH


async def test_refusals_in_french(
    counter: Counter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    intruder = _bundle(tmp_path, _ca(tmp_path / "intrus", "Intrus"), "1.5.0", COMPATIBLE)
    other = _bundle(tmp_path, (tmp_path / "pays/key.pem", tmp_path / "pays/cert.pem"),
                    "1.6.0", "autre-systeme")  # fmt: skip
    counter.boot(2, tryboot=False, monkeypatch=monkeypatch)
    updater = RaucUpdater()
    with pytest.raises(UpdateRefusedError, match="Signature refusée"):
        await updater.install(intruder, lambda _p, _s: None)
    with pytest.raises(UpdateRefusedError, match="autre système"):
        await updater.install(other, lambda _p, _s: None)
    status = await updater.status()
    assert (status.primary, status.versions) == ("A", {})  # nothing written, nothing tried


async def test_a_bundle_that_is_not_there_is_an_error_worth_retrying(
    counter: Counter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter.boot(2, tryboot=False, monkeypatch=monkeypatch)
    with pytest.raises(UpdaterError) as raised:
        await RaucUpdater().install(tmp_path / "absent.raucb", lambda _p, _s: None)
    assert not isinstance(raised.value, UpdateRefusedError)
    assert "RAUC" in str(raised.value)


def test_the_install_call_carries_the_credentials_as_a_header_not_a_url() -> None:
    assert install_call(Path("/data/b.raucb")) == ("/data/b.raucb", {})
    remote = RemoteBundle("https://flotte.example.fr/api/v1/bundles/1.5.0", "guichet-07",
                          "s3cret:x", Path("/etc/guichet/ca.pem"))  # fmt: skip
    where, args = install_call(remote)
    assert where == "https://flotte.example.fr/api/v1/bundles/1.5.0"  # no user:password@
    assert args == {
        "http-headers": ("as", ["Authorization: Basic Z3VpY2hldC0wNzpzM2NyZXQ6eA=="]),
        "tls-ca": ("s", "/etc/guichet/ca.pem"),
    }
    assert "s3cret" not in repr(remote)
    anonymous = RemoteBundle("https://f/b", None, None, None)
    assert install_call(anonymous) == ("https://f/b", {})
    assert anonymous.name == "b"


def test_a_bootloader_older_than_tryboot_s_is_refused(tmp_path: Path) -> None:
    dt = tmp_path / "bootloader"
    dt.mkdir()
    updater = RaucUpdater(bootloader_dt=dt)
    assert updater.unsupported() is None  # not told (no Pi firmware): nothing to say
    (dt / "build-timestamp").write_bytes((1622505600).to_bytes(4, "big"))  # 2021-06-01
    said = updater.unsupported()
    assert said is not None
    assert "01/06/2021" in said
    assert "25/11/2022" in said
    (dt / "build-timestamp").write_bytes((1669334400).to_bytes(4, "big"))  # 2022-11-25
    assert updater.unsupported() is None
    assert bootloader_refusal(tmp_path / "absent") is None


async def test_the_trial_reboot_asks_logind_for_the_firmware_s_tryboot(
    logind: LogindStandIn,
) -> None:
    await RaucUpdater().reboot_into_trial()
    # Through logind, not systemctl: systemctl writes the parameter's file itself, which the
    # counter's user may not (found in qemu).
    assert logind.calls == [("SetRebootParameter", ("0 tryboot",)), ("Reboot", (False,))]


async def test_a_refused_reboot_is_an_updater_error_in_french(logind: LogindStandIn) -> None:
    logind.refuse = "Reboot"
    with pytest.raises(UpdaterError, match="redémarrage refusé : Reboot : Access denied"):
        await RaucUpdater().reboot_into_trial()
    assert [member for member, _ in logind.calls] == ["SetRebootParameter", "Reboot"]


async def test_no_logind_is_an_updater_error(private_bus: str) -> None:
    with pytest.raises(UpdaterError, match="redémarrage refusé"):
        await RaucUpdater().reboot_into_trial()  # nobody owns org.freedesktop.login1


def test_progress_and_bus() -> None:
    assert progress_of({"Progress": ("(isi)", (40, "Checking bundle done.", 1))}) == (
        40,
        "Checking bundle done.",
    )
    assert progress_of({"Operation": ("s", "installing")}) is None
    assert bus_kind({"DBUS_STARTER_BUS_TYPE": "session"}) == "SESSION"
    assert bus_kind({}) == "SYSTEM"


def test_unreadable_status_and_unknown_refusal() -> None:
    with pytest.raises(UpdaterError, match="illisible"):
        parse_status("{not json")
    with pytest.raises(UpdaterError, match="illisible"):
        parse_status('{"booted": "A"}')
    said = "100% Installing failed.\nLastError: Failed mounting bundle: no dm\nInstalling failed"
    expected = "Installation refusée par RAUC : LastError: Failed mounting bundle: no dm"
    assert install_refusal(said) == expected
    assert type(install_error(said)) is UpdaterError  # may be tried again
    assert isinstance(install_error("Signature verification failed: …"), UpdateRefusedError)


def test_the_booted_slot_is_the_one_rauc_finds_booted_whatever_the_cmdline_said() -> None:
    """Trixie's RAUC with the Pi's ``root=PARTUUID=…``: the top-level ``booted`` is the root
    device, not a bootname (found in qemu: a committed trial was reported as rolled back)."""

    def slot(bootname: str, state: str, boot_status: str, version: str) -> dict[str, object]:
        return {
            "class": "rootfs",
            "device": f"/dev/disk/by-partlabel/root-{bootname.lower()}",
            "bootname": bootname,
            "state": state,
            "boot_status": boot_status,
            "slot_status": {"bundle": {"version": version}},
        }

    said = {
        "compatible": COMPATIBLE,
        "booted": "/dev/disk/by-partuuid/94823c59-2253-5db2-9f30-74ac042a992f",
        "boot_primary": "rootfs.0",
        "slots": [
            {"boot.0": {"class": "boot", "state": "inactive"}},
            {"rootfs.0": slot("A", "active", "good", "0.1.0")},
            {"rootfs.1": slot("B", "booted", "bad", "0.1.1")},
        ],
    }
    status = parse_status(json.dumps(said))
    assert (status.booted, status.primary, status.on_trial) == ("B", "A", True)
    assert status.booted_version == "0.1.1"
    said["booted"] = "B"  # RAUC 1.8 with rauc.slot=: the same answer
    assert parse_status(json.dumps(said)).booted == "B"
    del said["slots"][2]["rootfs.1"]["state"]  # type: ignore[index, attr-defined]
    assert parse_status(json.dumps(said)).booted == "B"  # a bootname still counts alone
    said["booted"] = "/dev/vda5"
    assert parse_status(json.dumps(said)).booted is None  # nothing names a slot: unknown


def test_each_progress_step_is_relayed_once() -> None:
    """After ``Completed`` the adapter reads ``Progress`` once more (its last change may come
    after the signal, seen as a final 99 % under load): a step already relayed is dropped."""
    steps: list[tuple[int, str]] = []
    relay = _Relay(lambda percent, step: steps.append((percent, step)))
    relay({"Progress": ("(isi)", (99, "Updating slots done.", 1))})
    relay({"Progress": ("(isi)", (100, "Installing done.", 1))})
    relay({"Progress": ("(isi)", (100, "Installing done.", 1))})  # read again after Completed
    relay({"Operation": ("s", "idle")})
    assert steps == [(99, "Updating slots done."), (100, "Installing done.")]
