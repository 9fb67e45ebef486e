"""The image check's pieces that run without a VM: its guichet.toml, qemu's command, the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.firstboot_config import parse_boot_config
from image import check
from image.builder.assemble import PARTUUIDS


def test_the_vm_gets_a_valid_guichet_toml_pointing_at_the_host() -> None:
    config = parse_boot_config(check.test_boot_config(18830))
    assert config.flotte.adresse == "mqtt://10.0.2.2:18830"  # qemu user-net's host loopback
    assert config.essai.materiel_simule
    assert config.guichet.device_id() == check.DEVICE_ID


def test_qemu_boots_the_images_own_kernel_with_the_check_unit(tmp_path: Path) -> None:
    for name in ("vmlinuz-6.12.1-arm64", "initrd.img-6.12.1-arm64"):
        (tmp_path / name).write_bytes(b"")
    argv = check.qemu_argv(tmp_path, tmp_path / "sd.img", tmp_path / "serial.log")
    assert argv[:3] == ["qemu-system-aarch64", "-M", "virt"]
    append = argv[argv.index("-append") + 1]
    assert "systemd.wants=guichet-image-check.service" in append
    assert f"root=PARTUUID={PARTUUIDS['root-a']} ro" in append
    assert f"file={tmp_path / 'sd.img'},format=raw,if=virtio" in argv


def test_verdict_is_read_from_the_serial_log(tmp_path: Path) -> None:
    serial = tmp_path / "serial.log"
    assert check.verdict(serial) is None
    serial.write_bytes(b"noise\x1b[0m\r\nGUICHET-CHECK: OK racine=ro donnees=1o service=actif\r\n")
    assert check.verdict(serial) == ("OK", "racine=ro donnees=1o service=actif")


def test_a_vm_that_dies_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # What qemu does on a machine without ipxe-qemu; a stand-in process says the same.
    argv = ["sh", "-c", "echo 'qemu: failed to find romfile \"efi-virtio.rom\"' >&2; exit 1"]
    with pytest.raises(check.VmDiedError, match=r"efi-virtio\.rom"):
        check.boot_and_wait(argv, tmp_path / "serial.log", lambda: False)
    assert "efi-virtio.rom" in capsys.readouterr().err


def test_a_vm_that_powers_off_is_not_an_error(tmp_path: Path) -> None:
    started = check.boot_and_wait(["true"], tmp_path / "serial.log", lambda: False)
    assert started > 0


def test_image_check_installs_the_rom_qemu_needs() -> None:
    run = (Path(__file__).parents[2] / "run").read_text()
    tools = run[run.index("IMAGE_TOOLS=(") : run.index(")", run.index("IMAGE_TOOLS=("))]
    assert "ipxe-qemu" in tools.split()
