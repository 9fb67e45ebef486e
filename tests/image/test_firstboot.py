"""First boot on directories standing in for the FAT and data partitions (no root needed)."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from appliance import firstboot
from appliance.config import load_config
from appliance.firstboot import Provisioner

FIXTURES = Path(__file__).parent / "fixtures" / "guichet"


class Recorder:
    """Stands in for subprocess: records every command first boot would run."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, argv: Sequence[str], stdin: str | None = None) -> None:
        self.commands.append(list(argv))


@pytest.fixture
def card(tmp_path: Path) -> tuple[Path, Path, Path]:
    boot, data, screen = tmp_path / "boot", tmp_path / "data", tmp_path / "tty1"
    boot.mkdir()
    data.mkdir()
    return boot, data, screen


def _provisioner(card: tuple[Path, Path, Path], run: Recorder) -> Provisioner:
    boot, data, screen = card
    return Provisioner(boot=boot, data=data, run=run, owner=None, screens=[screen], grow=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_valid_file_is_applied_and_its_secrets_leave_the_fat(
    card: tuple[Path, Path, Path],
) -> None:
    boot, data, screen = card
    (boot / "guichet.toml").write_text((FIXTURES / "valide-wifi.toml").read_text("utf-8"))
    run = Recorder()
    assert _provisioner(card, run).apply() == firstboot.EXIT_OK
    config = load_config(data / firstboot.APPLIANCE_FILE)
    assert config.device.id == "centre-social-2"
    assert config.device.data_dir == data / "etat"
    assert _mode(data / firstboot.APPLIANCE_FILE) == 0o600
    assert _mode(data / "etat") == 0o700
    wpa = data / firstboot.WPA_FILE
    assert "cle-wifi-tres-longue" in wpa.read_text()
    assert _mode(wpa) == 0o600
    assert (data / firstboot.TOKEN_FILE).read_text().strip() == "jeton-d-enrolement-123"
    assert (data / "systeme" / "localtime").readlink() == Path(
        "/usr/share/zoneinfo/America/Cayenne"
    )
    assert (data / "systeme/ssh/authorized_keys").read_text().startswith("ssh-ed25519 ")
    fat = (boot / "guichet.toml").read_text("utf-8")
    assert "cle-wifi-tres-longue" not in fat
    assert "jeton-d-enrolement-123" not in fat
    assert ["mount", "-o", "remount,rw", str(boot)] in run.commands
    assert any(c[0] == "ssh-keygen" for c in run.commands)
    assert "configuration appliquée" in screen.read_text("utf-8")


def test_unchanged_file_is_not_applied_twice(card: tuple[Path, Path, Path]) -> None:
    boot, _, _ = card
    (boot / "guichet.toml").write_text((FIXTURES / "valide-ethernet.toml").read_text("utf-8"))
    _provisioner(card, Recorder()).apply()
    again = Recorder()
    assert _provisioner(card, again).apply() == firstboot.EXIT_OK
    assert again.commands == []  # no remount, nothing rewritten


def test_an_edit_that_leaves_a_secret_empty_keeps_the_old_one(
    card: tuple[Path, Path, Path],
) -> None:
    boot, data, _ = card
    (boot / "guichet.toml").write_text((FIXTURES / "valide-ethernet.toml").read_text("utf-8"))
    _provisioner(card, Recorder()).apply()
    edited = (boot / "guichet.toml").read_text("utf-8").replace("Accueil", "Accueil 2")
    (boot / "guichet.toml").write_text(edited)
    assert _provisioner(card, Recorder()).apply() == firstboot.EXIT_OK
    config = load_config(data / firstboot.APPLIANCE_FILE)
    assert config.device.name == "Accueil 2"
    assert config.fleet.password == "s3cret-de-test"


def test_invalid_file_says_why_in_french_and_stops_the_counter(
    card: tuple[Path, Path, Path],
) -> None:
    boot, data, screen = card
    (boot / "guichet.toml").write_text((FIXTURES / "invalide-wifi-sans-nom.toml").read_text())
    assert _provisioner(card, Recorder()).apply() == firstboot.EXIT_INVALID
    error = (boot / firstboot.ERROR_FILE).read_bytes().decode("utf-8")
    assert "wifi_nom : obligatoire" in error
    assert "\r\n" in error
    assert "NE PEUT PAS DÉMARRER" in screen.read_text("utf-8")
    assert not (data / firstboot.APPLIANCE_FILE).exists()
    (boot / "guichet.toml").write_text((FIXTURES / "valide-ethernet.toml").read_text("utf-8"))
    assert _provisioner(card, Recorder()).apply() == firstboot.EXIT_OK
    assert not (boot / firstboot.ERROR_FILE).exists()  # fixed: the error file goes away


def test_missing_file_on_a_new_card_is_an_error(card: tuple[Path, Path, Path]) -> None:
    assert _provisioner(card, Recorder()).apply() == firstboot.EXIT_INVALID
    assert "introuvable" in (card[0] / firstboot.ERROR_FILE).read_text("utf-8")


def test_data_partition_is_grown_once(
    card: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    boot, data, _ = card
    grown: list[Path] = []
    monkeypatch.setattr(firstboot, "grow_partition", lambda mount, run: grown.append(mount))
    (boot / "guichet.toml").write_text((FIXTURES / "valide-ethernet.toml").read_text("utf-8"))
    provisioner = _provisioner(card, Recorder())
    provisioner.grow = True
    provisioner.apply()
    provisioner.apply()
    assert grown == [data]
    assert (data / firstboot.GROWN_MARK).exists()


def test_the_error_is_shown_on_the_counters_screen(
    card: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    pytest.importorskip("pygame")
    boot, _, _ = card
    (boot / "guichet.toml").write_text((FIXTURES / "invalide-wifi-sans-nom.toml").read_text())
    _provisioner(card, Recorder()).apply()
    summary = firstboot.screen_summary((boot / firstboot.ERROR_FILE).read_text("utf-8"))
    assert summary.startswith('[reseau] wifi_nom : obligatoire quand type = "wifi"')
    screen = firstboot.show_error_on_screen(boot, driver="dummy")
    try:
        shot = tmp_path / "erreur.png"  # kept for a look: docs/screenshots is not ours
        screen.screenshot(shot)
        assert shot.stat().st_size > 0
    finally:
        screen.close()


@pytest.fixture(scope="module")
def pays_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A private CA made by openssl now (the Pays's own, as deploy/ expects)."""
    from tests.support.secure_broker import make_certificates

    directory = tmp_path_factory.mktemp("ca")
    make_certificates(directory)
    return (directory / "ca.pem").read_text()


def _with_ca(line: str) -> str:
    text = (FIXTURES / "valide-ethernet.toml").read_text("utf-8")
    return text.replace("[flotte]\n", f"[flotte]\n{line}\n", 1)


def test_the_pays_ca_from_a_pem_file_on_the_card_reaches_fleet_tls(
    card: tuple[Path, Path, Path], pays_ca: str
) -> None:
    boot, data, _screen = card
    (boot / "ca-pays.pem").write_text(pays_ca)
    (boot / "guichet.toml").write_text(_with_ca('certificat_ca = "ca-pays.pem"'))
    assert _provisioner(card, Recorder()).apply() == firstboot.EXIT_OK
    config = load_config(data / firstboot.APPLIANCE_FILE)
    assert config.fleet.tls.ca_file == data / firstboot.CA_FILE
    assert (data / firstboot.CA_FILE).read_text() == pays_ca
    assert _mode(data / firstboot.CA_FILE) == 0o644  # public; the agent's user reads it


def test_the_pays_ca_as_inline_pem_text(card: tuple[Path, Path, Path], pays_ca: str) -> None:
    boot, data, _screen = card
    (boot / "guichet.toml").write_text(_with_ca(f'certificat_ca = """\n{pays_ca}"""'))
    assert _provisioner(card, Recorder()).apply() == firstboot.EXIT_OK
    config = load_config(data / firstboot.APPLIANCE_FILE)
    assert config.fleet.tls.ca_file is not None
    assert config.fleet.tls.ca_file.read_text() == pays_ca
    # Removed from guichet.toml later: system CAs again, the copy goes.
    (boot / "guichet.toml").write_text((FIXTURES / "valide-ethernet.toml").read_text("utf-8"))
    assert _provisioner(card, Recorder()).apply() == firstboot.EXIT_OK
    assert load_config(data / firstboot.APPLIANCE_FILE).fleet.tls.ca_file is None
    assert not (data / firstboot.CA_FILE).exists()


@pytest.mark.parametrize(
    ("line", "card_file", "expected"),
    [
        ('certificat_ca = "ca-pays.pem"', "pas un certificat", "n'est pas un certificat valide"),
        ('certificat_ca = "absent.pem"', None, "introuvable sur la carte"),
        (
            'certificat_ca = """-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"""',
            None,
            "n'est pas un certificat valide",
        ),
        ('certificat_ca = "/etc/ssl/x.pem"', None, "le nom d'un fichier .pem"),
    ],
)
def test_a_bad_ca_is_refused_in_french(
    card: tuple[Path, Path, Path], line: str, card_file: str | None, expected: str
) -> None:
    boot, data, _screen = card
    if card_file is not None:
        (boot / "ca-pays.pem").write_text(card_file)
    (boot / "guichet.toml").write_text(_with_ca(line))
    assert _provisioner(card, Recorder()).apply() == firstboot.EXIT_INVALID
    error = (boot / firstboot.ERROR_FILE).read_text("utf-8")
    assert "[flotte] certificat_ca" in error
    assert expected in error
    assert not (data / firstboot.APPLIANCE_FILE).exists()
