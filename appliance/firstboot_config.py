"""``guichet.toml``: the one file a technician edits, on the SD card's boot partition.

Keys are French, the file is commented in French (``image/layers/firstboot/files``), and
every error is a French sentence naming the section and the key, because the reader is a
technician in a town hall, not a developer. Unknown keys are refused: a misspelt
``mot_de_pase`` must not silently leave the counter without its password.

``to_appliance_toml`` turns it into the agent's own configuration (``appliance.config``).
"""

from __future__ import annotations

import json
import re
import ssl
import unicodedata
import zoneinfo
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from guichet import tomlmodel
from guichet.contract import DEVICE_ID_PATTERN
from guichet.errors import ConfigFileError, MqttUrlError
from guichet.mqtt_url import parse_mqtt_url

SECRET_KEYS = ("mot_de_passe", "jeton", "wifi_cle")  # moved off the FAT partition
SSH_KEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com)"
    r" [A-Za-z0-9+/=]{40,}( [^\n]*)?$"
)
MAX_ERRORS_SHOWN = 8
PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
CA_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,100}\.(pem|crt)$", re.IGNORECASE)
MAX_CA_BYTES = 256 * 1024  # a CA bundle is a few KB; anything huge is not one
HINT = "Corrigez le fichier guichet.toml depuis un ordinateur, puis redémarrez le guichet."


class BootConfigError(Exception):
    """guichet.toml is unreadable or invalid; ``str()`` is the French message to show."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class GuichetSection(_Section):
    site: str = Field(min_length=1, max_length=128)
    nom: str = Field(default="Guichet", min_length=1, max_length=128)
    identifiant: str = ""

    @field_validator("identifiant")
    @classmethod
    def _identifiant(cls, value: str) -> str:
        if value and not re.fullmatch(DEVICE_ID_PATTERN, value):
            raise ValueError(
                "lettres minuscules sans accent, chiffres et tirets seulement (2 à 63 caractères)"
            )
        return value

    def device_id(self) -> str:
        return self.identifiant or slug(f"{self.site}-{self.nom}")


class FlotteSection(_Section):
    adresse: str
    protocole: Literal["5", "3.1.1"] = "5"
    # The fleet server's web address: enrolment and the calls' signalling go there.
    site_web: str = ""
    jeton: str = ""
    utilisateur: str = ""
    mot_de_passe: str = ""
    # The Pays's own CA: the name of a .pem file placed beside guichet.toml, or the PEM text.
    certificat_ca: str = ""

    @field_validator("certificat_ca")
    @classmethod
    def _certificat_ca(cls, value: str) -> str:
        if value and PEM_BEGIN not in value and not CA_FILE_RE.match(value):
            raise ValueError(
                "le nom d'un fichier .pem posé sur la carte à côté de guichet.toml"
                f" (ex. « ca-pays.pem »), ou le texte du certificat ({PEM_BEGIN}…)"
            )
        return value

    @field_validator("site_web")
    @classmethod
    def _site_web(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("https", "http") or not parts.hostname):
            raise ValueError("doit ressembler à https://flotte.exemple.fr")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _jeton_avec_site_web(self) -> FlotteSection:
        if self.jeton and not self.site_web:
            raise ValueError("site_web : obligatoire avec un jeton d'enrôlement")
        return self

    @field_validator("adresse")
    @classmethod
    def _adresse(cls, value: str) -> str:
        try:
            parse_mqtt_url(value)
        except MqttUrlError as exc:
            if exc.reason == "port":
                raise ValueError("le numéro de port après « : » est incorrect") from None
            raise ValueError("doit ressembler à mqtts://flotte.exemple.fr:8883") from None
        return value


class ReseauSection(_Section):
    type: Literal["ethernet", "wifi"] = "ethernet"
    wifi_nom: str = Field(default="", max_length=32)
    wifi_cle: str = ""
    wifi_pays: str = Field(default="FR", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _wifi(self) -> ReseauSection:
        if self.type == "wifi" and not self.wifi_nom:
            raise ValueError('wifi_nom : obligatoire quand type = "wifi"')
        if self.wifi_cle and not 8 <= len(self.wifi_cle) <= 63:
            raise ValueError("wifi_cle : la clé Wi-Fi fait de 8 à 63 caractères")
        return self


class SystemeSection(_Section):
    fuseau_horaire: str = "Europe/Paris"
    cle_ssh: str = ""

    @field_validator("fuseau_horaire")
    @classmethod
    def _fuseau(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("fuseau horaire inconnu (en métropole : Europe/Paris)") from None
        return value

    @field_validator("cle_ssh")
    @classmethod
    def _cle(cls, value: str) -> str:
        if value and not SSH_KEY_RE.fullmatch(value):
            raise ValueError("doit être une clé publique sur une ligne : « ssh-ed25519 AAAA… »")
        return value


class AccessibiliteSection(_Section):
    """Issue 15: the screens said aloud, how loud, and the citizen's time (``[accessibility]``
    and ``[call] long_press_s`` of the agent's configuration)."""

    parole: bool = False  # every screen said aloud
    volume_parole: int = Field(default=50, ge=0, le=100)  # percent of espeak-ng's range
    appui_long_s: float = Field(default=2.0, ge=0.5, le=10)
    delai_choix_s: float = Field(default=60.0, ge=10, le=600)
    delai_question_s: float = Field(default=0.0, ge=0, le=600)  # 0: the fleet's questionnaire
    plus_de_temps_s: float = Field(default=10.0, ge=3, le=60)

    @field_validator("delai_question_s")
    @classmethod
    def _delai_question(cls, value: float) -> float:
        if 0 < value < 10:
            raise ValueError("0 (le délai du questionnaire du Pays) ou au moins 10 secondes")
        return value


class EssaiSection(_Section):
    """For the image check in a virtual machine only: simulated button, light, camera…"""

    materiel_simule: bool = False


class BootConfig(_Section):
    guichet: GuichetSection
    flotte: FlotteSection
    reseau: ReseauSection = ReseauSection()
    systeme: SystemeSection = SystemeSection()
    accessibilite: AccessibiliteSection = AccessibiliteSection()
    essai: EssaiSection = EssaiSection()


def slug(text: str) -> str:
    """``"Mairie de Saint-Étienne – Guichet 1"`` → ``"mairie-de-saint-etienne-guichet-1"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return (words[:63].rstrip("-") or "guichet").rjust(2, "0")


# --- reading, with French errors --------------------------------------------------------

_MESSAGES = {
    "missing": "manque (cette ligne est obligatoire)",
    "extra_forbidden": "clé inconnue (faute de frappe ?)",
    "string_too_short": "ne doit pas être vide",
    "string_too_long": "est trop long",
    "string_type": "doit être un texte entre guillemets",
    "bool_type": "doit valoir true ou false",
    "bool_parsing": "doit valoir true ou false",
    "model_type": "doit être une section [entre crochets]",
    "string_pattern_mismatch": "n'a pas la bonne forme",
}


def _french(error: ErrorDetails) -> str:
    loc = [str(p) for p in error["loc"]]
    kind = error["type"]
    if kind == "value_error":
        text = str(error["msg"]).removeprefix("Value error, ")
    elif kind == "literal_error":
        expected = str((error.get("ctx") or {}).get("expected", ""))
        text = "doit être l'une de ces valeurs : " + expected.replace("'", '"').replace(
            " or ", " ou "
        )
    else:
        text = _MESSAGES.get(kind, f"valeur incorrecte ({error['msg']})")
    if not loc:
        return text
    if len(loc) == 1 and kind == "missing":
        return f"la section [{loc[0]}] manque"
    if len(loc) == 1 and kind in ("value_error", "model_type"):
        return f"[{loc[0]}] {text}"
    if len(loc) == 1:
        return f"[{loc[0]}] : {text}" if kind != "extra_forbidden" else f"{loc[0]} : {text}"
    return f"[{loc[0]}] {'.'.join(loc[1:])} : {text}"


def parse_boot_config(text: str) -> BootConfig:
    """Validate guichet.toml's text; ``BootConfigError`` carries the whole French message."""
    try:
        return tomlmodel.parse(BootConfig, text, source="guichet.toml")
    except ConfigFileError as error:
        raise BootConfigError(_french_file_error(error.cause)) from None


def _french_file_error(exc: Exception | None) -> str:
    if not isinstance(exc, ValidationError):
        detail = str(exc).replace("at line", "ligne").replace("column", "colonne")
        return (
            "Le fichier guichet.toml est mal écrit (guillemet ou crochet oublié ?) :\n"
            f"  {detail}\n{HINT}"
        )
    lines = [f"  - {_french(e)}" for e in exc.errors()[:MAX_ERRORS_SHOWN]]
    if exc.error_count() > MAX_ERRORS_SHOWN:
        lines.append(f"  - … et {exc.error_count() - MAX_ERRORS_SHOWN} autre(s) erreur(s)")
    return "Le fichier guichet.toml contient une erreur :\n" + "\n".join(lines) + f"\n{HINT}"


def ca_certificate(value: str, boot: Path) -> str:
    """The PEM text of ``[flotte] certificat_ca`` (inline, or read from the card), checked
    to be certificates Python's TLS accepts; ``BootConfigError`` in French otherwise."""
    where = "[flotte] certificat_ca"
    if PEM_BEGIN in value:
        pem = value
    else:
        path = boot / value
        try:
            if path.stat().st_size > MAX_CA_BYTES:
                raise _ca_error(f"{where} : le fichier « {value} » est bien trop gros")
            pem = path.read_text(encoding="utf-8-sig", errors="replace")
        except FileNotFoundError:
            raise _ca_error(
                f"{where} : le fichier « {value} » est introuvable sur la carte"
                " (posez-le à côté de guichet.toml)"
            ) from None
        except OSError as exc:
            raise _ca_error(f"{where} : le fichier « {value} » est illisible ({exc})") from None
    blocks = re.findall(rf"{PEM_BEGIN}.*?-----END CERTIFICATE-----", pem, re.DOTALL)
    try:
        if not blocks:
            raise ssl.SSLError("no certificate")
        ssl.create_default_context(cadata="\n".join(blocks))
    except (ssl.SSLError, ValueError):
        raise _ca_error(
            f"{where} : ce n'est pas un certificat valide (il faut le fichier .pem du Pays,"
            f" qui commence par {PEM_BEGIN})"
        ) from None
    return "\n".join(blocks) + "\n"


def _ca_error(line: str) -> BootConfigError:
    return BootConfigError(f"Le fichier guichet.toml contient une erreur :\n  - {line}\n{HINT}")


def strip_secrets(text: str, note: str = "enregistré dans le guichet") -> str:
    """Empty every secret value in the file's text, keeping the comments and layout."""
    pattern = re.compile(rf'^(\s*)({"|".join(SECRET_KEYS)})(\s*=\s*)(".*?"|\'.*?\')(.*)$')

    def one(line: str) -> str:
        match = pattern.match(line)
        if match is None or match.group(4) in ('""', "''"):
            return line
        return f'{match.group(1)}{match.group(2)}{match.group(3)}""  # {note}'

    return "\n".join(one(line) for line in text.split("\n"))


def signalling_url(site_web: str) -> str:
    """``https://host`` → ``wss://host/ws/counter`` (``http`` → ``ws``)."""
    parts = urlsplit(site_web)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/ws/counter"


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def to_appliance_toml(config: BootConfig, *, data_dir: str, ca_file: str | None = None) -> str:
    """The agent's configuration (``appliance.config.ApplianceConfig``) as TOML text;
    ``ca_file``: where the Pays's CA was copied, trusted for mqtts:// and the HTTPS site."""
    flotte = config.flotte
    lines = [
        "# Généré au démarrage depuis guichet.toml : ne pas modifier ici.",
        "[device]",
        f"id = {_q(config.guichet.device_id())}",
        f"site = {_q(config.guichet.site)}",
        f"name = {_q(config.guichet.nom)}",
        f"data_dir = {_q(data_dir)}",
        "",
        "[fleet]",
        f"mqtt_url = {_q(flotte.adresse)}",
        f"protocol = {_q(flotte.protocole)}",
    ]
    if flotte.utilisateur:
        lines.append(f"username = {_q(flotte.utilisateur)}")
    if flotte.mot_de_passe:
        lines.append(f"password = {_q(flotte.mot_de_passe)}")
    if flotte.site_web:
        lines.append(f"enrolment_url = {_q(flotte.site_web)}")
    if flotte.jeton:
        lines.append(f"enrolment_token = {_q(flotte.jeton)}")
    if ca_file is not None:
        lines += ["", "[fleet.tls]", f"ca_file = {_q(ca_file)}"]
    access = config.accessibilite
    lines += ["", "[call]", f"long_press_s = {access.appui_long_s}"]
    if flotte.site_web and flotte.jeton:  # the call token comes with enrolment
        lines.append(f"server_url = {_q(signalling_url(flotte.site_web))}")
    lines += ["", "[hardware]", *_hardware(simulated=config.essai.materiel_simule)]
    lines += ["", "[accessibility]", *_accessibility(access)]
    lines += ["", "[logging]", 'level = "INFO"', "json_lines = true", ""]
    return "\n".join(lines)


def _hardware(*, simulated: bool) -> list[str]:
    # The card's A/B slots are real even when the peripherals are simulated (a VM, a bench):
    # RAUC installs the updates (docs/updates.md).
    slots = ['updater = "rauc"']
    if simulated:
        return [f'{part} = "simulated"' for part in ("button", "light", "camera", "printer")] + [
            'scanner = "simulated"',
            'usb = "simulated"',
            *slots,
        ]
    return [
        *slots,
        'button = "gpiozero"',
        'light = "gpiozero"',
        'camera = "v4l2"',  # Debian's kernel: a USB webcam (see docs/technicien.md)
        'printer = "cups"',
        'scanner = "sane"',
        'usb = "pyudev"',
        'system = "real"',
        # What the citizen sees and hears: the screen straight on KMS/DRM (the service's
        # user is in the video and render groups), the microphone and speakers through
        # ALSA, prompts spoken by espeak-ng. Without these a counter would start with the
        # config's defaults, meant for a laptop: a simulated screen and a test tone.
        'screen = "pygame"',
        'screen_driver = "kmsdrm"',
        'audio_in = "alsa"',
        'audio_out = "alsa"',
        'speech = "espeak-ng"',
    ]


def _accessibility(access: AccessibiliteSection) -> list[str]:
    lines = [
        f"speech = {'true' if access.parole else 'false'}",
        f"speech_volume_pct = {access.volume_parole}",
        f"choice_timeout_s = {access.delai_choix_s}",
        f"more_time_warning_s = {access.plus_de_temps_s}",
    ]
    if access.delai_question_s:
        lines.append(f"question_timeout_s = {access.delai_question_s}")
    return lines


def wpa_supplicant_conf(reseau: ReseauSection) -> str:
    """wpa_supplicant's file for ``wpa_supplicant@wlan0`` (an open network without a key)."""
    security = f"psk={_q(reseau.wifi_cle)}" if reseau.wifi_cle else "key_mgmt=NONE"
    return (
        f"ctrl_interface=/run/wpa_supplicant\ncountry={reseau.wifi_pays}\n"
        f"network={{\n  ssid={_q(reseau.wifi_nom)}\n  {security}\n  scan_ssid=1\n}}\n"
    )
