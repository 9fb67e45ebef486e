"""The demo's counters: one ``guichet appliance run`` process each, watched by the demo.

Each counter runs the real appliance code with simulated hardware from a TOML file the demo
writes (``var/demo/<counter>.toml``, 0600: it holds the counter's call token and broker
password). The demo waits on every process, so one that dies is never left unnoticed
(issue 17): it says so and starts it again — unless it dies ``MAX_CRASHES`` times within
``CRASH_WINDOW_S``, then it stays stopped and says so. A counter that stops cleanly without
the demo asking (someone sent it SIGTERM) stays stopped too. ``stop``/``start`` serve
``guichet demo stop|start COUNTER``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from guichet_cli.demo_scheme import DemoCounter

logger = logging.getLogger(__name__)

DEMO_TELEMETRY_INTERVAL_S = 10  # short, so the dashboard moves while you watch
DEMO_KEEPALIVE_S = 15
STOP_TIMEOUT_S = 5.0  # a counter says "offline" within 2 s of SIGTERM; then SIGKILL
RESTART_DELAY_S = 1.0
CRASH_WINDOW_S = 60.0
MAX_CRASHES = 3  # within the window: the counter stays stopped


@dataclass(frozen=True)
class CounterLink:
    """What a counter is given to reach the fleet."""

    mqtt_url: str
    protocol: str
    server_url: str  # the signalling WebSocket
    call_token: str
    broker_password: str | None  # None: an outside broker, anonymous


def counter_config(counter: DemoCounter, link: CounterLink, data_dir: Path) -> str:
    """The TOML a simulated counter runs with (the same format a real counter uses)."""
    account = ""
    if link.broker_password is not None:
        account = f'username = "{counter.device_id}"\npassword = "{link.broker_password}"\n'
    return (
        "[device]\n"
        f'id = "{counter.device_id}"\n'
        f'site = "{counter.site}"\n'
        f'name = "{counter.name}"\n'
        f'data_dir = "{data_dir}"\n\n'
        "[fleet]\n"
        f'mqtt_url = "{link.mqtt_url}"\n'
        f'protocol = "{link.protocol}"\n'
        f"{account}"
        f"keepalive_s = {DEMO_KEEPALIVE_S}\n"
        f"telemetry_interval_s = {DEMO_TELEMETRY_INTERVAL_S}\n"
        "reconnect_max_s = 5.0\n\n"
        "[call]\n"
        f'server_url = "{link.server_url}"\n'
        f'token = "{link.call_token}"\n\n'
        "[hardware]\n"
        'button = "simulated"\nlight = "simulated"\nscreen = "simulated"\n'
        'camera = "test_pattern"\naudio_in = "test_tone"\naudio_out = "none"\n'
        'printer = "simulated"\nscanner = "simulated"\nusb = "simulated"\nsystem = "simulated"\n\n'
        '[logging]\nlevel = "ERROR"\n'
    )


def config_file(demo_dir: Path, device_id: str) -> Path:
    return (demo_dir / f"{device_id}.toml").resolve()


def write_config(demo_dir: Path, counter: DemoCounter, link: CounterLink) -> Path:
    data_dir = (demo_dir / counter.device_id).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = config_file(demo_dir, counter.device_id)
    path.write_text(counter_config(counter, link, data_dir), encoding="utf-8")
    path.chmod(0o600)
    return path


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"tué par le signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"tué par le signal {-returncode}"
    return f"sorti avec le code {returncode}"


@dataclass
class _Counter:
    device_id: str
    config: Path
    process: asyncio.subprocess.Process | None = None
    stopping: bool = False  # the demo asked it to stop: its exit is expected
    crashes: deque[float] = field(default_factory=deque)


class CounterProcesses:
    """The demo's counter processes; ``say`` tells the person running the demo."""

    def __init__(self, configs: dict[str, Path], say: Callable[[str], None]) -> None:
        self._counters = {
            device_id: _Counter(device_id, path) for device_id, path in configs.items()
        }
        self._say = say
        self._tasks: set[asyncio.Task[None]] = set()

    def known(self, device_id: str) -> bool:
        return device_id in self._counters

    def is_running(self, device_id: str) -> bool:
        process = self._counters[device_id].process
        return process is not None and process.returncode is None

    async def start_all(self) -> None:
        for device_id in self._counters:
            await self.start(device_id)

    async def start(self, device_id: str) -> None:
        counter = self._counters[device_id]
        if self.is_running(device_id):
            return
        counter.stopping = False
        command = [
            sys.executable,
            "-m",
            "guichet_cli",
            "appliance",
            "run",
            "--config",
            str(counter.config),
        ]
        counter.process = process = await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.DEVNULL
        )
        logger.info("counter started", extra={"device_id": device_id, "pid": process.pid})
        self._spawn(self._watch(counter, process))

    def expect_stop(self) -> None:
        """Every counter's coming exit is expected (Ctrl-C reaches them with the demo)."""
        for counter in self._counters.values():
            counter.stopping = True

    async def stop(self, device_id: str) -> bool:
        """Stop one counter (it says "offline" first); False when it was not running."""
        counter = self._counters[device_id]
        counter.stopping = True
        process = counter.process
        if process is None or process.returncode is not None:
            return False
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self._say(f"Le guichet {device_id} ne s'arrête pas : il est tué.")
            process.kill()
            await process.wait()
        return True

    async def stop_all(self) -> None:
        self.expect_stop()
        await asyncio.gather(*(self.stop(device_id) for device_id in self._counters))
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    def running(self) -> list[str]:
        return [device_id for device_id in self._counters if self.is_running(device_id)]

    # --- a counter that ended on its own -----------------------------------------------------

    async def _watch(self, counter: _Counter, process: asyncio.subprocess.Process) -> None:
        returncode = await process.wait()
        if counter.process is not process or counter.stopping:
            return
        device_id = counter.device_id
        logger.info("counter exited", extra={"device_id": device_id, "returncode": returncode})
        if returncode == 0:
            self._say(
                f"Le guichet {device_id} s'est arrêté sans que la démonstration le demande ; "
                f"il reste arrêté (guichet demo start {device_id} pour le relancer)."
            )
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        counter.crashes.append(now)
        while counter.crashes and counter.crashes[0] < now - CRASH_WINDOW_S:
            counter.crashes.popleft()
        if len(counter.crashes) >= MAX_CRASHES:
            self._say(
                f"Le guichet {device_id} s'est arrêté ({how_it_ended(returncode)}), "
                f"{len(counter.crashes)} fois en moins de {CRASH_WINDOW_S:.0f} s : il reste "
                f"arrêté (voir ses erreurs ci-dessus ; guichet demo start {device_id} "
                "pour réessayer)."
            )
            return
        self._say(
            f"Le guichet {device_id} s'est arrêté ({how_it_ended(returncode)}) : redémarrage."
        )
        await asyncio.sleep(RESTART_DELAY_S)
        if counter.process is process and not counter.stopping:
            await self.start(device_id)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro, name="demo:counter")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("demo counter watch failed", exc_info=exc)
