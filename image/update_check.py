"""``./run update-check``: a software update from the fleet server, end to end, in qemu
(issue 13, docs/updates.md, « The qemu check »).

The built card (version N) boots in qemu through ``image/pi_firmware.py``, which plays the
Pi firmware's part (``autoboot.txt``, the one-shot tryboot flag); everything on the counter is
the image's own: RAUC, the tryboot backend, the agent's update command and health gate, the
trial guard. Against the real fleet server over HTTPS and Mosquitto with TLS (as
``./run enrol-check``), the counter enrolled with a pre-approved token:

1. **N boots** from slot A and says "online" with version N;
2. **N+1 is published and rolled out** (uploaded through the API, checked by the server
   against the update CA, a rollout with a canary wave): the counter downloads it over HTTPS
   with its own credentials, RAUC writes slot B, the counter reboots with
   ``reboot "0 tryboot"``, the firmware boots B once, the health gate passes, the slot is
   committed, and the counter reports N+1 online; a plain power cycle then boots B again;
3. **a broken N+2 is rolled out** (its counter service fails to start): written to A, booted
   once in tryboot; nobody commits it, the trial guard gives it up, the firmware boots B
   again by itself, the counter reports the rollback, the rollout stops at its error
   threshold and the alert « Déploiement arrêté » is raised.

N+1 and N+2 are the build's root filesystem with what a project-only release changes (the
project's version in the venv; for N+2 also a counter service that cannot start), edited with
``debugfs`` (no mount) and bundled and signed like the build's own bundle (the DEV key, or
the Pays's with the same options as ``./run image``). Times are printed and kept in
``var/image/out/update-check.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import guichet
from image import check
from image.builder import bundle
from image.builder.assemble import part_files
from image.builder.workspace import Workspace
from image.enrol_check import boot_config, prepare
from image.enrol_rig import Fleet, broker, fleet_server, make_pki
from image.pi_firmware import Boot, PiFirmware

DEVICE_ID = "maj-verification"
ARCHITECTURE = "arm64"
POLL_S = 3.0
# The trial guard's grace for the broken release (900 s on a counter): shortened through the
# kernel command line, like any cmdline.txt option (docs/updates.md).
GUARD_S = 240
VENV_LIB = "/opt/guichet/venv/lib"
SERVICE = "/etc/systemd/system/guichet.service"
BROKEN_EXEC = "ExecStart=/bin/false\n"


def debugfs(fs: Path, request: str, *, write: bool = False) -> str:
    argv = ["debugfs", *(["-w"] if write else []), "-R", request, str(fs)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0 or "File not found" in done.stderr:
        raise RuntimeError(f"debugfs {request!r} on {fs.name}: {done.stderr.strip()}")
    return done.stdout


def names_in(fs: Path, directory: str) -> list[str]:
    return debugfs(fs, f"ls -p {directory}").replace("/", "\n").split()


def metadata_path(fs: Path) -> str:
    """The project's ``METADATA`` in the image's venv (importlib.metadata's version)."""
    python = next(n for n in names_in(fs, VENV_LIB) if n.startswith("python3"))
    site = f"{VENV_LIB}/{python}/site-packages"
    info = next(n for n in names_in(fs, site) if re.fullmatch(r"guichet_proche-.*\.dist-info", n))
    return f"{site}/{info}/METADATA"


def replace_file(fs: Path, path: str, text: str, scratch: Path) -> None:
    local = scratch / Path(path).name
    local.write_text(text, encoding="utf-8")
    local.chmod(0o644)
    debugfs(fs, f"rm {path}", write=True)
    debugfs(fs, f"write {local} {path}", write=True)


def release_root(source: Path, target: Path, version: str, *, broken: bool) -> Path:
    """A copy of the build's root filesystem as release ``version`` (``broken``: its
    counter service cannot start)."""
    subprocess.run(["cp", "--sparse=always", str(source), str(target)], check=True)  # noqa: S603,S607
    scratch = target.with_suffix(".d")
    scratch.mkdir(exist_ok=True)
    meta = metadata_path(target)
    text = re.sub(r"(?m)^Version: .*$", f"Version: {version}", debugfs(target, f"cat {meta}"))
    replace_file(target, meta, text, scratch)
    if broken:
        unit = debugfs(target, f"cat {SERVICE}")
        unit = re.sub(r"(?m)^ExecStart=.*\n", BROKEN_EXEC, unit)
        replace_file(target, SERVICE, unit, scratch)
    subprocess.run(["e2fsck", "-fn", str(target)], check=True, capture_output=True)  # noqa: S603,S607
    return target


def make_bundle(
    ws: Workspace, signing: bundle.Signing, root: Path, version: str, target: Path
) -> Path:
    content = target.with_suffix(".contenu")
    shutil.rmtree(content, ignore_errors=True)
    content.mkdir(parents=True)
    os.link(root, content / "rootfs.ext4")
    os.link(part_files(ws).boot, content / "boot.vfat")
    manifest = bundle.manifest_text(version, build="update-check", architecture=ARCHITECTURE)
    (content / "manifest.raucm").write_text(manifest, encoding="utf-8")
    shutil.copy(bundle.HOOK, content / "hook.sh")
    (content / "hook.sh").chmod(0o755)
    target.unlink(missing_ok=True)
    subprocess.run(  # noqa: S603
        ["rauc", "bundle", f"--cert={signing.cert}", f"--key={signing.key}",  # noqa: S607
         str(content), str(target)],
        check=True, capture_output=True,
    )  # fmt: skip
    shutil.rmtree(content)
    return target


def next_versions(version: str) -> tuple[str, str]:
    """N+1 and N+2: the last number of ``version`` raised (a local part dropped)."""
    numbers = [int(n) for n in re.split(r"[.]", re.split(r"[-+]", version)[0])]
    one, two = list(numbers), list(numbers)
    one[-1] += 1
    two[-1] += 2
    return ".".join(map(str, one)), ".".join(map(str, two))


@dataclass
class Counter:
    """What the fleet server knows of the check's counter and rollouts."""

    fleet: Fleet
    api_token: str = ""
    seen: list[str] = field(default_factory=list)

    def api(self) -> Any:
        import httpx

        return httpx.Client(
            base_url=self.fleet.url, verify=str(self.fleet.ca_file), timeout=600,
            headers={"Authorization": f"Bearer {self.api_token}"},
        )  # fmt: skip

    def device(self) -> dict[str, Any]:
        from fleet_server.models import Device

        with self.fleet.session() as session:
            row = session.get(Device, DEVICE_ID)
            if row is None:
                return {}
            return {
                "state": str(row.state), "version": row.software_version,
                "update": row.update_state, "reason": row.update_reason,
            }  # fmt: skip

    def online_with(self, version: str) -> bool:
        device = self.device()
        return self.fleet.online(DEVICE_ID) and device.get("version") == version

    def upload(self, path: Path) -> int:
        with self.api() as api, path.open("rb") as body:
            answer = api.post(
                "/api/v1/releases", content=body,
                headers={"Content-Type": "application/octet-stream"},
            )  # fmt: skip
        answer.raise_for_status()
        return int(answer.json()["id"])

    def start_rollout(self, release_id: int) -> int:
        body = {
            "release_id": release_id,
            "waves": [{"kind": "canary", "count": 1}, {"kind": "rest"}],
            "max_failures": 1,
        }
        with self.api() as api:
            answer = api.post("/api/v1/rollouts", json=body)
        answer.raise_for_status()
        return int(answer.json()["id"])

    def rollout(self, rollout_id: int) -> dict[str, Any]:
        with self.api() as api:
            answer = api.get(f"/api/v1/rollouts/{rollout_id}")
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        for counter in data["counters"]:
            said = f"{data['release']}: {counter['state']} {counter['percent'] or ''}".strip()
            if not self.seen or self.seen[-1] != said:
                self.seen.append(said)
        return data

    def counter_state(self, rollout_id: int) -> tuple[str | None, str | None]:
        counters = self.rollout(rollout_id)["counters"]
        mine = [c for c in counters if c["device_id"] == DEVICE_ID]
        return (mine[0]["state"], mine[0]["reason"]) if mine else (None, None)

    def bundle_bytes(self) -> float:
        """What the server has served of bundles so far (its ``guichet_bundle_bytes``)."""
        with self.api() as api:
            text = api.get("/metrics").text
        found = re.search(r"^guichet_bundle_bytes_total (\S+)$", text, re.M)
        return float(found[1]) if found else 0.0

    def open_alerts(self) -> list[str]:
        from sqlalchemy import select

        from fleet_server.models.fleet import Alert

        with self.fleet.session() as session:
            rows = session.scalars(
                select(Alert).where(Alert.device_id == DEVICE_ID, Alert.cleared_at.is_(None))
            )
            return [str(a.kind) for a in rows]


def throttled(step: Callable[[], bool]) -> Callable[[], bool]:
    last = [0.0]

    def every_few_seconds() -> bool:
        if time.monotonic() - last[0] < POLL_S:
            return False
        last[0] = time.monotonic()
        return step()

    return every_few_seconds


@dataclass
class Card:
    """The counter's card in qemu, booted by the firmware's stand-in."""

    out: Path
    disk: Path
    workdir: Path
    firmware: PiFirmware
    boots: list[dict[str, Any]] = field(default_factory=list)

    def power_on(self, until: Callable[[], bool], extra: str = "") -> tuple[Boot, float, Path]:
        """One run until ``until()`` (then the power is cut) or the VM reboots by itself."""
        boot = self.firmware.power_on()
        serial = self.workdir / f"serial-{len(self.boots) + 1}.log"
        argv = check.qemu_argv(
            self.out, self.disk, serial, boot.kernel_args(extra),
            kernel=boot.kernel, initrd=boot.initrd,
        )  # fmt: skip
        started = check.boot_and_wait(argv, serial, throttled(until))
        text = serial.read_text(encoding="utf-8", errors="replace") if serial.exists() else ""
        self.firmware.powered_off(text)
        self.boots.append({
            "boot": len(self.boots) + 1, "partition": boot.partition, "tryboot": boot.tryboot,
            "seconds": round(time.monotonic() - started, 1),
            "ended_with": "reboot 0 tryboot" if self.firmware.tryboot else "power cut or reboot",
        })  # fmt: skip
        return boot, started, serial


def run_check(
    image: Path, out: Path, ws: Workspace, signing: bundle.Signing, workdir: Path
) -> dict[str, Any]:
    version_n = guichet.__version__
    version_1, version_2 = next_versions(version_n)
    root = part_files(ws).root
    t = time.monotonic()
    bundle_1 = make_bundle(
        ws, signing, release_root(root, workdir / "root-n1.ext4", version_1, broken=False),
        version_1, workdir / f"guichet-proche-{version_1}.raucb",
    )  # fmt: skip
    bundle_2 = make_bundle(
        ws, signing, release_root(root, workdir / "root-n2.ext4", version_2, broken=True),
        version_2, workdir / f"guichet-proche-{version_2}.raucb",
    )  # fmt: skip
    result: dict[str, Any] = {
        "versions": [version_n, version_1, version_2],
        "bundles_made_s": round(time.monotonic() - t, 1),
    }
    make_pki(workdir / "broker" / "certs")
    with (
        broker(workdir / "broker") as mqtt_port,
        fleet_server(
            workdir, mqtt_port, public_url=True, releases_dir=workdir / "releases",
            update_keyring=signing.keyring, rollout_check_s=5.0,
        ) as fleet,
    ):  # fmt: skip
        from fleet_server.security import auth

        with fleet.session() as session:
            api_token = auth.create_api_token(session, "admin-verification", "update-check")
        counter = Counter(fleet, api_token)
        https_port = int(fleet.url.rsplit(":", 1)[1])
        toml = boot_config(DEVICE_ID, fleet.token(pre_approved=True), mqtt_port, https_port)
        disk = prepare(image, workdir, "maj", toml)
        card = Card(out, disk, workdir, PiFirmware(disk, workdir / "firmware"))
        result |= phase_update(card, counter, version_n, version_1, bundle_1)
        result |= phase_rollback(card, counter, version_1, bundle_2)
        result["boots"] = card.boots
        result["progress_seen"] = counter.seen
    return result


def phase_update(
    card: Card, counter: Counter, version_n: str, version_1: str, bundle_1: Path
) -> dict[str, Any]:
    """Boot N on A; roll N+1 out; trial on B, committed; a power cycle stays on B."""
    marks: dict[str, float] = {}
    rollout = [0]

    def roll_out_when_online() -> bool:
        if "online_n" not in marks and counter.online_with(version_n):
            marks["online_n"] = time.monotonic()
            release = counter.upload(bundle_1)
            marks["rollout_1"] = time.monotonic()
            rollout[0] = counter.start_rollout(release)
        if rollout[0]:
            counter.rollout(rollout[0])
        return False  # until the counter reboots into its trial by itself

    first, started, _ = card.power_on(roll_out_when_online)
    tried = card.firmware.tryboot
    carried = counter.bundle_bytes()

    def committed() -> bool:
        state, _ = counter.counter_state(rollout[0]) if rollout[0] else (None, None)
        if state == "committed" and "committed" not in marks:
            marks["committed"] = time.monotonic()
        return "committed" in marks and counter.online_with(version_1)

    trial, _, _ = card.power_on(committed)
    marks["online_1"] = time.monotonic()

    def online_again() -> bool:  # seen while the VM runs: once its power is cut, it is not
        if counter.online_with(version_1):
            marks["online_plain"] = time.monotonic()
        return "online_plain" in marks

    plain, _, _ = card.power_on(online_again)
    passed = (
        first.partition == 2 and tried and trial.partition == 3 and trial.tryboot
        and "committed" in marks and plain.partition == 3 and not plain.tryboot
        and "online_plain" in marks
    )  # fmt: skip
    return {
        "update": {
            "passed": passed,
            "power_on_to_online_n_s": _since(marks, "online_n", started),
            "rollout_start_to_committed_s": _since(marks, "committed", marks.get("rollout_1")),
            "rollout_start_to_online_n1_s": _since(marks, "online_1", marks.get("rollout_1")),
            "bundle_mib": round(bundle_1.stat().st_size / 2**20, 1),
            "carried_mib": round(carried / 2**20, 1),
            "rollout": counter.rollout(rollout[0]) if rollout[0] else None,
        }
    }


def phase_rollback(card: Card, counter: Counter, version_1: str, bundle_2: Path) -> dict[str, Any]:
    """Roll the broken N+2 out: trial on A, given up, B again; the rollout stops, alert."""
    marks: dict[str, float] = {}
    rollout = [0]

    def roll_out_when_online() -> bool:
        if "rollout_2" not in marks and counter.online_with(version_1):
            release = counter.upload(bundle_2)
            marks["rollout_2"] = time.monotonic()
            rollout[0] = counter.start_rollout(release)
        if rollout[0]:
            counter.rollout(rollout[0])
        return False

    before = counter.bundle_bytes()
    card.power_on(roll_out_when_online)
    tried = card.firmware.tryboot
    carried = counter.bundle_bytes() - before
    trial, trial_started, _ = card.power_on(lambda: False, extra=f"guichet.garde_essai_s={GUARD_S}")

    def rolled_back() -> bool:
        state, _ = counter.counter_state(rollout[0]) if rollout[0] else (None, None)
        if state == "rolled_back" and "rolled_back" not in marks:
            marks["rolled_back"] = time.monotonic()
        if "online_1" not in marks and counter.online_with(version_1):
            marks["online_1"] = time.monotonic()
        stopped = counter.rollout(rollout[0])["state"] == "stopped" if rollout[0] else False
        return "rolled_back" in marks and stopped and "update_stopped" in counter.open_alerts()

    back, _, _ = card.power_on(rolled_back)
    data = counter.rollout(rollout[0]) if rollout[0] else {}
    state, reason = counter.counter_state(rollout[0]) if rollout[0] else (None, None)
    alerts = counter.open_alerts()
    passed = (
        tried and trial.partition == 2 and trial.tryboot and back.partition == 3
        and not back.tryboot and state == "rolled_back" and data.get("state") == "stopped"
        and "update_stopped" in alerts and "online_1" in marks  # seen before the power cut
    )  # fmt: skip
    return {
        "rollback": {
            "passed": passed,
            "broken_trial_power_on_to_back_online_s": _since(marks, "online_1", trial_started),
            "broken_trial_power_on_to_rolled_back_s": _since(marks, "rolled_back", trial_started),
            "rollout_start_to_rolled_back_s": _since(marks, "rolled_back", marks.get("rollout_2")),
            "carried_mib": round(carried / 2**20, 1),
            "counter_reason": reason,
            "rollout_state": data.get("state"),
            "rollout_reason": data.get("reason"),
            "open_alerts": alerts,
        }
    }


def _since(marks: dict[str, float], key: str, start: float | None) -> float | None:
    return None if key not in marks or start is None else round(marks[key] - start, 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m image.update_check")
    parser.add_argument("--top", type=Path, default=check.PROJECT_DIR / "var" / "image")
    parser.add_argument("--keep", action="store_true", help="keep the VM's disk and logs")
    args = parser.parse_args(argv)
    ws = Workspace(args.top.resolve())
    image = ws.out / "guichet-proche.img"
    if not image.exists() or not part_files(ws).root.exists():
        sys.stderr.write(f"update-check: {image} or its parts are missing: run ./run image\n")
        return 2
    try:
        signing = bundle.signing_from(os.environ, ws, check.PROJECT_DIR)
    except bundle.SigningError as exc:
        sys.stderr.write(f"update-check: {exc}\n")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="update-check-", dir=ws.top))
    workdir.chmod(0o755)
    try:
        result = run_check(image, ws.out, ws, signing, workdir)
    except check.VmDiedError as exc:
        sys.stderr.write(f"update-check: ÉCHEC — {exc}\nlogs: {workdir}\n")
        return 1
    return check.conclude(
        "update-check", result, ws.out / "update-check.json", workdir, keep=args.keep
    )


if __name__ == "__main__":
    sys.exit(main())
