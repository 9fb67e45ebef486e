"""The enrolment check's pieces that run without a VM: the technician's guichet.toml, the
broker's configuration from deploy/, what the serial console and the admin page say."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from appliance.config import TlsSection, parse_config
from appliance.firstboot_config import SECRET_KEYS, parse_boot_config, to_appliance_toml
from appliance.fleet.tls import https_context
from image import check, enrol_check, enrol_rig

DOCUMENTED = {"site", "nom", "identifiant", "adresse", "site_web", "jeton", "certificat_ca"}


def test_the_vm_gets_only_the_technicians_keys_a_token_and_the_ca() -> None:
    text = enrol_check.boot_config("enrol-tardif", "gpe_" + "x" * 43, 18883, 18443)
    config = parse_boot_config(text)
    assert config.flotte.adresse == "mqtts://10.0.2.2:18883"
    assert config.flotte.site_web == "https://10.0.2.2:18443"
    assert config.flotte.certificat_ca == "ca-pays.pem"
    keys = set(re.findall(r"^(\w+) =", text, re.M)) - {"materiel_simule"}  # no hardware in a VM
    assert keys <= DOCUMENTED
    assert "jeton" in SECRET_KEYS
    agent = parse_config(to_appliance_toml(config, data_dir="/d", ca_file="/d/ca.pem"))
    assert agent.fleet.enrolment_token is not None
    assert str(agent.fleet.tls.ca_file) == "/d/ca.pem"


def test_the_broker_runs_the_shipped_configuration(tmp_path: Path) -> None:
    shipped = enrol_rig.DEPLOY_CONF.read_text()
    used = enrol_rig.mosquitto_conf(shipped, tmp_path, 18883)

    def directives(text: str) -> list[str]:
        return [ln.split()[0] for ln in text.splitlines() if ln.strip() and ln[0] != "#"]

    assert directives(used) == directives(shipped)
    assert "listener 18883 127.0.0.1" in used
    assert f"pid_file {tmp_path}/run/mosquitto.pid" in used  # a directory of its own
    assert not [ln for ln in used.splitlines() if "/etc/" in ln and not ln.startswith("#")]


def test_what_the_screen_said_is_read_from_the_serial_log() -> None:
    line = {
        "msg": "enrolment screen",
        "text": "En attente de l’accord du Pays — guichet « G », code K7MP4X",
    }
    serial = (
        "boot noise\r\n"
        f"GUICHET-ECRAN: {json.dumps(line, ensure_ascii=False)}\r\n"
        'GUICHET-ECRAN: {"msg": "enrolment scr\r\n'  # cut by the console
        "GUICHET-CARTE: GUICHET-ERREUR.txt présent\r\n"
    )
    said = enrol_check.screen_texts(serial)
    assert said == [line["text"]]
    assert enrol_check.codes_shown(said) == {"K7MP4X"}
    assert enrol_check.CARD_RE.search(serial)


def test_the_pending_rows_of_the_admin_page_are_parsed() -> None:
    template = (check.PROJECT_DIR / "fleet_server/web/templates/enrolment.html").read_text()
    assert "<td><strong><code data-enrolment-code>" in template  # what the regex expects
    page = (
        '<tr data-request="7" data-device-id="enrol-tardif"><td><strong>'
        "<code data-enrolment-code>K7MP4X</code></strong></td><td>enrol-tardif</td></tr>"
    )
    assert enrol_rig.pending_rows(page) == [(7, "enrol-tardif", "K7MP4X")]


def test_the_vm_boots_with_the_enrol_check_unit(tmp_path: Path) -> None:
    for name in ("vmlinuz-6.12.1-arm64", "initrd.img-6.12.1-arm64"):
        (tmp_path / name).write_bytes(b"")
    argv = check.qemu_argv(
        tmp_path, tmp_path / "sd.img", tmp_path / "s.log", enrol_check.KERNEL_ARGS
    )
    append = argv[argv.index("-append") + 1]
    assert "systemd.wants=guichet-enrol-check.service" in append
    assert "guichet-image-check" not in append


def test_the_pki_serves_the_host_and_the_vm(tmp_path: Path) -> None:
    enrol_rig.make_pki(tmp_path)
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    san = (tmp_path / "server.ext").read_text()
    assert "IP:10.0.2.2" in san
    assert "IP:127.0.0.1" in san


def _handshake(server_dir: Path, client: ssl.SSLContext) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.num_tickets = 0  # nothing written after the handshake to a client that has gone
    server.load_cert_chain(server_dir / "server.pem", server_dir / "server.key")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def serve() -> None:
            conn, _ = listener.accept()
            with contextlib.suppress(OSError), server.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            raw = socket.create_connection(listener.getsockname(), timeout=10)
            with raw, client.wrap_socket(raw, server_hostname="127.0.0.1"):
                pass
        finally:
            thread.join(timeout=10)


def test_the_counter_trusts_the_pki_with_strict_checks(tmp_path: Path) -> None:
    """The counter's own TLS context (strict X.509, as Python 3.13 on the image) accepts the
    check's PKI: without keyUsage on its CA the counter saw "ne répond pas" forever."""
    enrol_rig.make_pki(tmp_path)
    _handshake(tmp_path, https_context(TlsSection(ca_file=tmp_path / "ca.pem")))


def test_a_ca_without_key_usage_is_refused_by_the_counter(tmp_path: Path) -> None:
    """What Python 3.13 refuses by default, the counter refuses on every Python."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=lax",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=flotte",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "2",
        "-CAcreateserial", "-extfile", "san.ext", "-out", "server.pem")  # fmt: skip
    with pytest.raises(ssl.SSLCertVerificationError, match="key usage"):
        _handshake(tmp_path, https_context(TlsSection(ca_file=tmp_path / "ca.pem")))
