"""A private Mosquitto on a free loopback port, with its own config, for one test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import stop_process

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = START_TIMEOUT_S, *, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s} s")


@dataclass
class Broker:
    """A Mosquitto process. ``stop()``/``start()`` keep the same port and config."""

    workdir: Path
    port: int = field(default_factory=free_port)
    extra_config: str = ""
    process: subprocess.Popen[bytes] | None = None
    bind_address: str = "127.0.0.1"  # "0.0.0.0": reachable from a shaped network's counter

    @property
    def url(self) -> str:
        return self.url_at("127.0.0.1")

    def url_at(self, host: str) -> str:
        """The broker's URL as reached at ``host`` (one of the addresses it listens on)."""
        return f"mqtt://{host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {self.bind_address}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "user root\n"
            "max_queued_messages 100000\n"
            f"log_dest file {self.log_file}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{self.extra_config}\n"
        )
        return conf

    def start(self) -> None:
        conf = self.write_config()
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(conf)])
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process(self.process)
        self.process = None
