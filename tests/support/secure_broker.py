"""A private Mosquitto started from ``deploy/mosquitto/mosquitto.conf`` itself, with test
certificates made at test time (openssl). Only paths and the port are rewritten; every
other directive is the shipped one (``test_deploy_config_is_used_as_shipped`` checks).

Started as root, Mosquitto drops to user ``mosquitto``: the work directory is a fresh 0755
directory under /tmp (pytest's own are 0700) and its files are handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from image.enrol_rig import DEPLOY_CONF, make_pki, mosquitto_conf
from tests.support.mosquitto import MOSQUITTO, free_port, wait_port
from tests.support.processes import stop_process

SERVER_USER = "guichet-fleet-server"


def make_certificates(directory: Path) -> None:
    """A test CA and a server certificate for 127.0.0.1/localhost signed by it: the same
    PKI as ``./run enrol-check`` (strict X.509, as the counter's TLS context requires)."""
    make_pki(directory, hosts=("127.0.0.1",))


@dataclass
class SecureBroker:
    workdir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def files_dir(self) -> Path:
        return self.workdir / "files"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "run" / "mosquitto.pid"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "ca.pem"

    def reload(self) -> None:
        os.kill(self.process.pid, signal.SIGHUP)

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _give_to_mosquitto(root: Path) -> None:
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in [root, *root.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


@contextmanager
def secure_broker(passwords: str, acl: str) -> Iterator[SecureBroker]:
    """Mosquitto from the deploy config, with these initial password and ACL files."""
    workdir = Path(tempfile.mkdtemp(prefix="guichet-mosquitto-"))
    workdir.chmod(0o755)
    try:
        make_certificates(workdir / "certs")
        files = workdir / "files"
        files.mkdir()
        (files / "passwd").write_text(passwords)
        (files / "acl").write_text(acl)
        (workdir / "data").mkdir()
        (workdir / "run").mkdir()
        port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(DEPLOY_CONF.read_text(), workdir, port))
        _give_to_mosquitto(workdir)
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            yield SecureBroker(workdir, port, process)
        finally:
            stop_process(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
