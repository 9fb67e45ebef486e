"""The demo's MQTT broker: the system's Mosquitto, run by the demo with its own configuration
in ``var/demo/broker/``, on a free loopback port, with the accounts and ACL the fleet server
generates for production (``fleet_server/mqtt/broker_files.py``).

So the demo behaves as deployed: MQTT 5, no anonymous access, each counter its own account
reading only its own ``cmd`` and ``config``, and an outside client subscribed to
``guichet/v1/+/status`` receives exactly the status messages — the embedded amqtt broker the
demo used before delivered other counters' retained messages to a counter and retained
``config`` messages to that subscription (issue 17; ``docs/decisions.md``).

The broker is started in its own session: the terminal's Ctrl-C reaches the demo and its
counters, not the broker, which must stay up until the counters have said "offline" and the
fleet server has stored it. The demo stops it last.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import shutil
import signal
import socket
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

MOSQUITTO_FALLBACK = Path("/usr/sbin/mosquitto")  # Debian's; /usr/sbin is not on every PATH
PREFERRED_PORT = 1884  # not 1883: a system Mosquitto often holds that one
BROKER_DIR = "broker"  # under the demo's directory
CONFIG_FILE, PID_FILE, LOG_FILE = "mosquitto.conf", "mosquitto.pid", "mosquitto.log"
SERVER_USER = "guichet-demo-serveur"  # the fleet server's account (and the demo commands')
START_TIMEOUT_S = 10.0  # Mosquitto listens within milliseconds; a loaded machine is slower
STOP_TIMEOUT_S = 5.0  # SIGTERM, then SIGKILL
PROBE_INTERVAL_S = 0.05
LOG_TAIL_LINES = 5  # shown when the broker will not start


class DemoBrokerError(Exception):
    """The broker could not be started; the message is for the person running the demo."""


def free_port(preferred: int = PREFERRED_PORT) -> int:
    """``preferred`` when nothing listens there, else any free loopback port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_mosquitto() -> Path | None:
    found = shutil.which("mosquitto")
    if found is not None:
        return Path(found)
    return MOSQUITTO_FALLBACK if MOSQUITTO_FALLBACK.exists() else None


def mosquitto_version(binary: Path) -> str:
    """``2.0.11``, from ``mosquitto -h``'s first line; "" when it says nothing usable."""
    try:
        run = subprocess.run(  # noqa: S603 - the system's mosquitto, fixed arguments
            [str(binary), "-h"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    first = (run.stdout or run.stderr).strip().splitlines()[:1]
    words = first[0].split() if first else []
    return words[-1] if words and words[0] == "mosquitto" else ""


def broker_config(directory: Path, port: int) -> str:
    return (
        "# The Guichet Proche demo's broker (guichet_cli/demo_broker.py), rewritten at each\n"
        "# start. Accounts and ACL: the fleet server's generated files, as in production.\n"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {directory / 'passwd'}\n"
        f"acl_file {directory / 'acl'}\n"
        f"pid_file {directory / PID_FILE}\n"
        "persistence false\n"
        # Started as root, Mosquitto would become user "mosquitto", which cannot read these
        # files or write the pid file; as anyone else this line changes nothing.
        f"user {getpass.getuser()}\n"
        f"log_dest file {directory / LOG_FILE}\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
        f"listener {port} 127.0.0.1\n"
    )


class DemoBroker:
    """One Mosquitto process with the demo's configuration."""

    def __init__(self, binary: Path, demo_dir: Path, port: int) -> None:
        self.binary = binary
        self.directory = (demo_dir / BROKER_DIR).resolve()
        self.port = port
        self.version = mosquitto_version(binary)
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.directory / CONFIG_FILE

    @property
    def pid_file(self) -> Path:
        return self.directory / PID_FILE

    @property
    def log_file(self) -> Path:
        return self.directory / LOG_FILE

    @property
    def label(self) -> str:
        """Which broker runs, as the demo announces it."""
        return f"Mosquitto {self.version}".rstrip()

    def prepare(self) -> None:
        """The directory and the configuration; the password and ACL files are the fleet
        server's to write (before ``start``: Mosquitto refuses to start without them)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self.config_file.write_text(broker_config(self.directory, self.port), encoding="utf-8")
        self.log_file.unlink(missing_ok=True)

    async def start(self) -> None:
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                str(self.binary),
                "-c",
                str(self.config_file),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # Ctrl-C is the demo's to handle, not the broker's
            )
        try:
            await self._wait_listening()
        except DemoBrokerError:
            await self.stop()
            raise
        logger.info("demo broker started", extra={"port": self.port, "pid": self._process.pid})

    async def wait_exited(self) -> int:
        """Wait for the broker to exit (it should not before ``stop``); its return code."""
        assert self._process is not None
        return await self._process.wait()

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _wait_listening(self) -> None:
        assert self._process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline:
            if self._process.returncode is not None:
                raise DemoBrokerError(f"Mosquitto s'est arrêté au démarrage :\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(PROBE_INTERVAL_S)
        raise DemoBrokerError(
            f"Mosquitto n'écoute pas sur le port {self.port} après {START_TIMEOUT_S:.0f} s"
        )

    def log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])
