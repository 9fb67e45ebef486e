"""guichet.toml: the technician's file — valid and invalid fixtures, French errors, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import parse_config
from appliance.firstboot_config import (
    BootConfigError,
    parse_boot_config,
    slug,
    strip_secrets,
    to_appliance_toml,
    wpa_supplicant_conf,
)

FIXTURES = Path(__file__).parent / "fixtures" / "guichet"
TEMPLATE = Path(__file__).parents[2] / "image" / "layers" / "firstboot" / "files" / "guichet.toml"


def _read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _error(name: str) -> str:
    with pytest.raises(BootConfigError) as caught:
        parse_boot_config(_read(name))
    return str(caught.value)


def test_the_shipped_template_is_valid_and_commented_in_french() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    config = parse_boot_config(text)
    assert config.reseau.type == "ethernet"
    assert config.systeme.fuseau_horaire == "Europe/Paris"
    assert "Bloc-notes" in text
    assert "mot_de_passe" in text


def test_ethernet_fixture_derives_the_identifier_from_site_and_name() -> None:
    config = parse_boot_config(_read("valide-ethernet.toml"))
    assert config.guichet.device_id() == "mairie-de-saint-etienne-de-lugdares-accueil"
    appliance = parse_config(to_appliance_toml(config, data_dir="/var/lib/guichet/etat"))
    assert appliance.device.id == config.guichet.device_id()
    assert appliance.device.site == "Mairie de Saint-Étienne-de-Lugdarès"
    assert appliance.fleet.uses_tls
    assert appliance.fleet.port == 8883
    assert appliance.fleet.password == "s3cret-de-test"
    assert appliance.hardware.button == "gpiozero"
    assert appliance.hardware.button_pin == 17
    assert appliance.hardware.printer == "cups"
    assert appliance.hardware.scanner == "sane"
    # the citizen's side of a real counter: its screen, microphone, speakers and voice
    assert (appliance.hardware.screen, appliance.hardware.screen_driver) == ("pygame", "kmsdrm")
    assert (appliance.hardware.audio_in, appliance.hardware.audio_out) == ("alsa", "alsa")
    assert appliance.hardware.speech == "espeak-ng"


def test_wifi_fixture_gives_a_wpa_supplicant_file() -> None:
    config = parse_boot_config(_read("valide-wifi.toml"))
    assert config.guichet.device_id() == "centre-social-2"
    conf = wpa_supplicant_conf(config.reseau)
    assert 'ssid="Mairie-Public"' in conf
    assert 'psk="cle-wifi-tres-longue"' in conf
    assert "country=FR" in conf
    appliance = parse_config(to_appliance_toml(config, data_dir="/d"))
    assert appliance.fleet.protocol == "3.1.1"
    assert appliance.fleet.password is None
    # Enrolment: the agent enrols with the token and gets its call token that way.
    assert appliance.fleet.enrolment_url == "https://flotte.exemple.fr"
    assert appliance.fleet.enrolment_token == "jeton-d-enrolement-123"
    assert appliance.call.server_url == "wss://flotte.exemple.fr/ws/counter"
    assert appliance.call.token is None


def test_an_enrolment_token_needs_the_fleet_web_address() -> None:
    text = _read("valide-wifi.toml").replace('site_web = "https://flotte.exemple.fr/"\n', "")
    with pytest.raises(BootConfigError) as caught:
        parse_boot_config(text)
    assert "site_web : obligatoire avec un jeton d'enrôlement" in str(caught.value)


def test_simulated_hardware_for_the_image_check() -> None:
    text = _read("valide-ethernet.toml") + "\n[essai]\nmateriel_simule = true\n"
    appliance = parse_config(to_appliance_toml(parse_boot_config(text), data_dir="/d"))
    assert appliance.hardware.button == "simulated"
    assert appliance.hardware.camera == "simulated"


def test_unknown_key_is_named_as_a_probable_typo() -> None:
    message = _error("invalide-cle-inconnue.toml")
    assert "[flotte] mot_de_pase : clé inconnue (faute de frappe ?)" in message
    assert "redémarrez le guichet" in message


def test_wifi_without_network_name() -> None:
    assert 'wifi_nom : obligatoire quand type = "wifi"' in _error("invalide-wifi-sans-nom.toml")


def test_wrong_fleet_address() -> None:
    assert "doit ressembler à mqtts://" in _error("invalide-adresse.toml")


def test_broken_toml_says_where() -> None:
    message = _error("invalide-toml.toml")
    assert message.startswith("Le fichier guichet.toml est mal écrit")
    assert "ligne" in message


def test_several_errors_are_listed_in_french() -> None:
    message = _error("invalide-plusieurs.toml")
    assert "[guichet] site : manque" in message
    assert "[guichet] nom : ne doit pas être vide" in message
    assert "la section [flotte] manque" in message
    assert '[reseau] type : doit être l\'une de ces valeurs : "ethernet" ou "wifi"' in message
    assert "[systeme] fuseau_horaire : fuseau horaire inconnu" in message
    assert "[systeme] cle_ssh : doit être une clé publique" in message
    assert "Value error" not in message
    assert "Field required" not in message


def test_strip_secrets_keeps_layout_and_comments() -> None:
    text = _read("valide-wifi.toml")
    cleaned = strip_secrets(text, "enregistré")
    assert "jeton-d-enrolement-123" not in cleaned
    assert "cle-wifi-tres-longue" not in cleaned
    assert 'jeton = ""  # enregistré' in cleaned
    assert 'wifi_nom = "Mairie-Public"' in cleaned
    assert len(cleaned.splitlines()) == len(text.splitlines())
    assert parse_boot_config(cleaned).reseau.wifi_cle == ""
    assert strip_secrets(cleaned) == cleaned  # nothing left to strip


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Mairie – Guichet 1", "mairie-guichet-1"), ("É", "0e"), ("???", "guichet")],
)
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_accessibility_reaches_the_agents_configuration() -> None:
    """Issue 15: speech, its volume and the citizen's time, from the technician's file."""
    text = _read("valide-ethernet.toml") + (
        "\n[accessibilite]\nparole = true\nvolume_parole = 80\nappui_long_s = 3\n"
        "delai_choix_s = 120\ndelai_question_s = 90\nplus_de_temps_s = 15\n"
    )
    appliance = parse_config(to_appliance_toml(parse_boot_config(text), data_dir="/d"))
    access = appliance.accessibility
    assert (access.speech, access.speech_volume_pct) == (True, 80)
    assert (access.choice_timeout_s, access.question_timeout_s) == (120, 90)
    assert access.more_time_warning_s == 15
    assert appliance.call.long_press_s == 3
    default = parse_config(
        to_appliance_toml(parse_boot_config(_read("valide-ethernet.toml")), data_dir="/d")
    )
    assert (default.accessibility.speech, default.accessibility.question_timeout_s) == (False, None)
    assert default.call.long_press_s == 2.0


def test_a_question_delay_under_ten_seconds_is_refused_in_french() -> None:
    text = _read("valide-ethernet.toml") + "\n[accessibilite]\ndelai_question_s = 5\n"
    with pytest.raises(BootConfigError, match="au moins 10 secondes"):
        parse_boot_config(text)
