"""``guichet demo``: the whole system on one machine with nothing to set up.

Starts the system's Mosquitto with the demo's own configuration (``demo_broker.py``) unless
``MQTT_URL`` names a broker, the fleet server on SQLite under ``./var/demo``
(``demo_server.py``), and four counters — the real appliance code with simulated hardware —
as child processes it watches (``demo_counters.py``); then prints the dashboard's address and
the logins. ``guichet demo stop|start COUNTER`` reach it through its control socket
(``demo_control.py``); ``press`` and ``skip`` go to the counter over MQTT (``demo_press.py``).

Stopping (Ctrl-C, SIGTERM) goes in order: the counters first — each tells the fleet
"offline" —, then the server once it has stored that, then the broker. So the next run does
not show counters "En ligne depuis 17 min" (issue 17). A second Ctrl-C skips the waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path

from guichet.logs import setup_logging
from guichet_cli.demo_broker import (
    BROKER_DIR,
    CONFIG_FILE,
    SERVER_USER,
    DemoBroker,
    DemoBrokerError,
    find_mosquitto,
    free_port,
)
from guichet_cli.demo_control import ControlReply, ControlRequest, Handler, ask, serve_control
from guichet_cli.demo_counters import CounterLink, CounterProcesses, config_file, write_config
from guichet_cli.demo_scheme import COUNTERS, agent_login, reception_login
from guichet_cli.demo_server import (
    ADMIN_USERNAME,
    BrokerAccess,
    DemoServer,
    PreparedServer,
    prepare_server,
    wait_recorded_offline,
)
from guichet_cli.demo_state import (
    DEMO_DIR,
    DemoState,
    control_socket,
    remove_state,
    stop_leftovers,
    write_state,
)
from guichet_cli.demo_stats import SEED_DAYS
from guichet_cli.output import complain, say

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
OFFLINE_RECORD_TIMEOUT_S = 5.0  # the server stores an "offline" within a second or so
SERVER_START_POLL_S = 0.05
NO_MOSQUITTO = (
    "Mosquitto est introuvable. Installez-le (sudo apt-get install mosquitto ; ./run demo le "
    "fait) ou donnez un broker : MQTT_URL=mqtt://hôte:1883 guichet demo"
)


@dataclass
class Stopping:
    """Ctrl-C once: stop in order; twice: without waiting for the fleet to take note."""

    requested: asyncio.Event = field(default_factory=asyncio.Event)
    hurried: bool = False
    counters: CounterProcesses | None = None  # known once started
    server: DemoServer | None = None

    def on_signal(self) -> None:
        if self.counters is not None:
            self.counters.expect_stop()  # Ctrl-C reaches them too: their exit is no crash
        if self.requested.is_set():
            self.hurried = True
            if self.server is not None:
                self.server.force_exit = True
        self.requested.set()


def _choose_broker(demo_dir: Path) -> tuple[BrokerAccess, DemoBroker | None, str]:
    """The broker to use: ``MQTT_URL``'s, else the demo's Mosquitto; and its label."""
    external = os.environ.get("MQTT_URL")
    if external:
        protocol = os.environ.get("MQTT_PROTOCOL", "5")
        return BrokerAccess(external, protocol), None, f"broker extérieur {external}"
    binary = find_mosquitto()
    if binary is None:
        raise DemoBrokerError(NO_MOSQUITTO)
    broker = DemoBroker(binary, demo_dir, free_port())
    broker.prepare()
    access = BrokerAccess(
        broker.url,
        "5",
        server_user=SERVER_USER,
        server_password=secrets.token_urlsafe(18),
        files_dir=broker.directory,
        pid_file=broker.pid_file,
    )
    return access, broker, broker.label


def _start_up(demo_dir: Path) -> tuple[BrokerAccess, DemoBroker | None, str, PreparedServer]:
    """The blocking part of the start: a previous demo's leftovers stopped, the broker
    chosen, the database made ready."""
    demo_dir.mkdir(parents=True, exist_ok=True)
    leftovers = [config_file(demo_dir, c.device_id) for c in COUNTERS]
    leftovers.append((demo_dir / BROKER_DIR / CONFIG_FILE).resolve())
    if stopped := stop_leftovers(leftovers):
        say(f"Processus d'une démonstration précédente arrêtés : {', '.join(stopped)}.")
    access, broker, broker_label = _choose_broker(demo_dir)
    return access, broker, broker_label, prepare_server(demo_dir, access)


async def run_demo(port: int, demo_dir: Path = DEMO_DIR) -> int:
    if await asyncio.to_thread(ask, control_socket(demo_dir), "ping", timeout_s=2) is not None:
        complain(f"Une démonstration tourne déjà dans ce dossier ({demo_dir}).")
        return 1
    stopping = Stopping()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.on_signal)
    try:
        access, broker, broker_label, prepared = await asyncio.to_thread(_start_up, demo_dir)
    except DemoBrokerError as exc:
        complain(str(exc))
        return 2
    async with contextlib.AsyncExitStack() as stack:
        if broker is not None:
            try:
                await broker.start()
            except DemoBrokerError as exc:
                complain(str(exc))
                return 1
            stack.push_async_callback(broker.stop)
        state = DemoState(
            pid=os.getpid(),
            mqtt_url=access.url,
            protocol=access.protocol,
            mqtt_username=access.server_user,
            mqtt_password=access.server_password,
            broker=broker_label,
            counters=tuple(c.device_id for c in COUNTERS),
        )
        return await _serve(demo_dir, port, state, broker, prepared, stopping)
    return 1  # pragma: no cover - the block returns


async def _serve(
    demo_dir: Path,
    port: int,
    state: DemoState,
    broker: DemoBroker | None,
    prepared: PreparedServer,
    stopping: Stopping,
) -> int:
    from fleet_server.app import create_app
    from fleet_server.serving import uvicorn_config

    settings = prepared.settings
    config = uvicorn_config(create_app(settings), host=HOST, port=port, log_level="warning")
    server = stopping.server = DemoServer(config)
    serving = asyncio.create_task(server.serve(), name="demo:server")
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(SERVER_START_POLL_S)
    if not server.started:
        with contextlib.suppress(BaseException):
            await serving
        complain(f"Le serveur de la flotte n'a pas démarré (le port {port} est-il pris ? --port).")
        return 1
    configs = _counter_configs(demo_dir, state, prepared, f"ws://{HOST}:{port}/ws/counter")
    counters = stopping.counters = CounterProcesses(configs, say)
    await counters.start_all()
    database_url = settings.database_url
    control = await serve_control(control_socket(demo_dir), _controller(counters, database_url))
    write_state(demo_dir, state)
    _announce(port, prepared.admin_password, state, broker)
    waits: list[asyncio.Future[object]] = [
        asyncio.ensure_future(stopping.requested.wait()),
        asyncio.ensure_future(asyncio.shield(serving)),
    ]
    if broker is not None:
        waits.append(asyncio.ensure_future(broker.wait_exited()))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    if not stopping.requested.is_set():
        complain("Le serveur de la flotte ou le broker s'est arrêté : la démonstration s'arrête.")
        stopping.hurried = True
    await _shut_down(demo_dir, control, counters, server, serving, stopping, database_url)
    return 0


def _counter_configs(
    demo_dir: Path, state: DemoState, prepared: PreparedServer, server_url: str
) -> dict[str, Path]:
    """Each counter's TOML, with this run's call token and broker password."""
    configs = {}
    for c in COUNTERS:
        link = CounterLink(
            state.mqtt_url,
            state.protocol,
            server_url,
            prepared.call_tokens[c.device_id],
            prepared.broker_passwords.get(c.device_id),
        )
        configs[c.device_id] = write_config(demo_dir, c, link)
    return configs


async def _shut_down(
    demo_dir: Path,
    control: asyncio.Server,
    counters: CounterProcesses,
    server: DemoServer,
    serving: asyncio.Task[None],
    stopping: Stopping,
    database_url: str,
) -> None:
    """Counters, then (their "offline" stored) the server; the broker goes last (caller)."""
    say("Arrêt : les guichets préviennent la flotte qu'ils se déconnectent…")
    control.close()
    remove_state(demo_dir)
    control_socket(demo_dir).unlink(missing_ok=True)
    ids = [counter.device_id for counter in COUNTERS]
    await counters.stop_all()
    if not stopping.hurried and not serving.done():
        pending = await asyncio.to_thread(
            wait_recorded_offline, database_url, ids, OFFLINE_RECORD_TIMEOUT_S
        )
        if pending:
            say(f"La flotte n'a pas encore noté hors ligne : {', '.join(pending)}.")
    server.should_exit = True
    with contextlib.suppress(BaseException):
        await serving
    say("Démonstration arrêtée.")


def _controller(counters: CounterProcesses, database_url: str) -> Handler:
    async def handle(request: ControlRequest) -> ControlReply:
        device_id = request.counter
        if request.action == "ping":
            return ControlReply(ok=True)
        if device_id is None or not counters.known(device_id):
            return ControlReply(ok=False, message=f"guichet inconnu : {device_id}")
        if request.action == "status":
            return ControlReply(ok=True, running=counters.is_running(device_id))
        if request.action == "start":
            if counters.is_running(device_id):
                return ControlReply(ok=True, message=f"{device_id} est déjà en marche.")
            await counters.start(device_id)
            return ControlReply(ok=True, message=f"{device_id} redémarre ; en ligne d'ici peu.")
        if not await counters.stop(device_id):
            return ControlReply(ok=True, message=f"{device_id} est déjà arrêté.")
        pending = await asyncio.to_thread(
            wait_recorded_offline, database_url, [device_id], OFFLINE_RECORD_TIMEOUT_S
        )
        noted = "pas encore noté hors ligne" if pending else "« Hors ligne » au tableau de bord"
        return ControlReply(ok=True, message=f"{device_id} arrêté ; {noted}.")

    return handle


def _announce(port: int, password: str, state: DemoState, broker: DemoBroker | None) -> None:
    url = f"http://{HOST}:{port}"
    observe = []
    if broker is not None:
        observe = [
            "  Observer le broker : mosquitto_sub -h 127.0.0.1 "
            f"-p {broker.port} -u {state.mqtt_username} -P {state.mqtt_password} "
            "-t 'guichet/v1/+/status' -v",
        ]
    lines = [
        "",
        "Guichet Proche — démonstration",
        f"  Tableau de bord : {url}/",
        f"  Identifiant     : {ADMIN_USERNAME}",
        f"  Mot de passe    : {password}",
        f"  Broker MQTT     : {state.broker}, {state.mqtt_url} (MQTT {state.protocol})",
        *observe,
        "",
        f"  Agents (même mot de passe), console : {url}/agent",
        *(f"    {agent_login(c.service):<21} répond au guichet de {c.site}" for c in COUNTERS),
        "",
        f"  Accueil (même mot de passe), réservations : {url}/reception",
        *(f"    {reception_login(c):<33} {c.site}" for c in COUNTERS),
        "",
        f"  Statistiques : {url}/statistiques (les {SEED_DAYS // 7} semaines passées : appels",
        "    fictifs, données de démonstration ; ceux d'aujourd'hui sont les vôtres)",
        "",
        "  Appeler depuis un guichet : guichet demo press monts-de-chalus",
        "    (--long : appui long, raccroche ; après un appel répondu, le bouton répond au",
        "    questionnaire ; guichet demo skip monts-de-chalus le passe)",
        "  Arrêter, relancer un guichet : guichet demo stop|start vallee-de-la-gorre",
        "  Ctrl-C pour tout arrêter.",
        "",
    ]
    say("\n".join(lines))


def main(port: int = 8000) -> int:
    setup_logging("WARNING", json_lines=False)
    try:
        return asyncio.run(run_demo(port))
    except KeyboardInterrupt:  # before the demo's own handlers were in place
        return 130
