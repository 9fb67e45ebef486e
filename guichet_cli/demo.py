"""``guichet demo``: the whole system on one machine with nothing to set up.

Starts, in one process, an embedded MQTT broker (amqtt, MQTT 3.1.1, loopback only) unless
``MQTT_URL`` names a real one, and the fleet server on SQLite under ``./var/demo``; then four
counters — the real appliance code with simulated hardware — as child processes, one per
site of the scheme this product comes from. Prints the dashboard's address and a login.
Ctrl-C stops the counters cleanly (they say "offline"), then the server and the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guichet.logs import setup_logging

logger = logging.getLogger(__name__)

DEMO_DIR = Path("var/demo")
DEMO_BROKER_PORT = 1884  # not 1883: a system Mosquitto often holds that one
DEMO_TELEMETRY_INTERVAL_S = 10  # short, so the dashboard moves while you watch
DEMO_KEEPALIVE_S = 15
COUNTER_STOP_TIMEOUT_S = 5.0
ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class DemoCounter:
    device_id: str
    site: str
    name: str
    service: str  # the service its button calls


# The four sites of the Pays d'Ouest Limousin scheme (see the seed in shared/seeds).
COUNTERS = (
    DemoCounter("bandiat-tardoire-avenir", "Bandiat Tardoire Avenir", "Mairie", "caf"),
    DemoCounter("pays-de-la-meteorite", "Pays de la Météorite", "Mairie", "msa"),
    DemoCounter("monts-de-chalus", "Monts de Châlus", "Maison des associations", "france-travail"),
    DemoCounter(
        "vallee-de-la-gorre",
        "Vallée de la Gorre",
        "Centre intercommunal d'action sociale",
        "carsat",
    ),
)
SERVICES = ("caf", "msa", "france-travail", "carsat")  # seeded by the first migration
STATE_FILE = "state.json"  # where `guichet demo press` finds the broker


def counter_config(
    counter: DemoCounter, mqtt_url: str, protocol: str, data_dir: Path, call: tuple[str, str]
) -> str:
    """The TOML a simulated counter runs with (the same format a real counter uses)."""
    server_url, token = call
    return (
        "[device]\n"
        f'id = "{counter.device_id}"\n'
        f'site = "{counter.site}"\n'
        f'name = "{counter.name}"\n'
        f'data_dir = "{data_dir}"\n\n'
        "[fleet]\n"
        f'mqtt_url = "{mqtt_url}"\n'
        f'protocol = "{protocol}"\n'
        f"keepalive_s = {DEMO_KEEPALIVE_S}\n"
        f"telemetry_interval_s = {DEMO_TELEMETRY_INTERVAL_S}\n"
        "reconnect_max_s = 5.0\n\n"
        "[call]\n"
        f'server_url = "{server_url}"\n'
        f'token = "{token}"\n\n'
        "[hardware]\n"
        'button = "simulated"\nlight = "simulated"\nscreen = "simulated"\n'
        'camera = "test_pattern"\naudio_in = "test_tone"\naudio_out = "none"\n'
        'printer = "simulated"\nscanner = "simulated"\nusb = "simulated"\nsystem = "simulated"\n\n'
        '[logging]\nlevel = "ERROR"\n'
    )


def admin_password(demo_dir: Path) -> str:
    """The demo's admin password: made once, kept in var/demo so it stays the same."""
    path = demo_dir / "admin-password.txt"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(9)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def _free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there, else any free loopback port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_embedded_broker(port: int) -> Any:
    """An amqtt broker on loopback. It speaks MQTT 3.1.1 only."""
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    return broker


def start_counters(
    mqtt_url: str, protocol: str, demo_dir: Path, server_url: str, tokens: dict[str, str]
) -> list[subprocess.Popen[bytes]]:
    processes = []
    for counter in COUNTERS:
        data_dir = (demo_dir / counter.device_id).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        config = demo_dir / f"{counter.device_id}.toml"
        call = (server_url, tokens[counter.device_id])
        text = counter_config(counter, mqtt_url, protocol, data_dir, call)
        config.write_text(text, encoding="utf-8")
        config.chmod(0o600)  # it holds the counter's call token
        command = [sys.executable, "-m", "guichet_cli", "appliance", "run", "--config", str(config)]
        processes.append(subprocess.Popen(command))  # noqa: S603 - our own interpreter and args
    return processes


def stop_counters(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=COUNTER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _prepare_server(
    demo_dir: Path, mqtt_url: str, protocol: str
) -> tuple[Any, str, dict[str, str]]:
    """Settings, migrated database, the admin and one agent per service, each counter's
    service and call token; returns (settings, password, call tokens by counter)."""
    from fleet_server.calls.admin import new_call_token, set_device_service
    from fleet_server.db import make_engine, make_session_factory, migrate
    from fleet_server.models import Device
    from fleet_server.security.auth import upsert_user
    from fleet_server.settings import Settings

    settings = Settings(
        demo=True,
        database_url=f"sqlite:///{(demo_dir / 'fleet.sqlite3').resolve()}",
        mqtt_url=mqtt_url,
        mqtt_protocol=protocol,
        mqtt_client_id=f"guichet-demo-server-{os.getpid()}",
        alert_offline_after_min=1.0,
    )
    migrate(settings.database_url)
    password = admin_password(demo_dir)
    engine = make_engine(settings.database_url)
    tokens: dict[str, str] = {}
    with make_session_factory(engine)() as session:
        upsert_user(session, ADMIN_USERNAME, password, role="admin")
        for service in SERVICES:
            upsert_user(session, f"agent-{service}", password, role="agent", service=service)
        session.commit()
        for counter in COUNTERS:
            tokens[counter.device_id] = new_call_token(session, counter.device_id, create=True)
            set_device_service(session, counter.device_id, counter.service)
            device = session.get_one(Device, counter.device_id)
            # As an administrator (or enrolment) would: a counter's status never names it.
            device.site, device.name = counter.site, counter.name
            upsert_user(
                session, reception_login(counter), password, role="reception", site=counter.site
            )
        seed_schedules(session)
        session.commit()
    engine.dispose()
    return settings, password, tokens


def reception_login(counter: DemoCounter) -> str:
    return f"accueil-{counter.device_id}"


# The demo's timetable (Paris wall-clock): weekday (0 = Monday), start hour, end hour.
CAF_SLOTS = ((1, 14, 17), (3, 9, 12))  # walk-in, every counter
APPOINTMENT_WINDOWS = (("msa", 0, 9, 12), ("carsat", 4, 14, 17))  # every counter
PERMANENCE_WEEKDAYS = (0, 2)  # France Travail mornings at Monts de Châlus
PERMANENCE_DAYS = 28  # dated permanences seeded this far ahead


def seed_schedules(session: Any) -> None:
    """Caf weekly slots, MSA and Carsat appointment windows, France Travail permanences with
    its agent on duty. Once: a database that already has rules is left alone."""
    from datetime import date, time, timedelta

    from sqlalchemy import select

    from fleet_server.models import Permanence, ScheduleRule, User
    from fleet_server.scheme.schedules import public_holiday

    if session.scalar(select(ScheduleRule.id).limit(1)) is not None:
        return
    for weekday, start, end in CAF_SLOTS:
        session.add(ScheduleRule(service="caf", mode="slot", weekday=weekday,
                                 start_time=time(start), end_time=time(end)))  # fmt: skip
    for service, weekday, start, end in APPOINTMENT_WINDOWS:
        session.add(ScheduleRule(service=service, mode="appointment", weekday=weekday,
                                 start_time=time(start), end_time=time(end)))  # fmt: skip
    agent = session.scalar(select(User.id).where(User.username == "agent-france-travail"))
    site = next(c.site for c in COUNTERS if c.service == "france-travail")
    today = date.today()
    for n in range(PERMANENCE_DAYS):
        day = today + timedelta(days=n)
        if day.weekday() in PERMANENCE_WEEKDAYS and not public_holiday(day):
            session.add(
                Permanence(service="france-travail", site=site, day=day, half="am",
                           start_time=time(9), end_time=time(12),
                           agents=[agent] if agent else [])
            )  # fmt: skip


async def run_demo(port: int) -> None:
    import uvicorn

    from fleet_server.app import create_app
    from fleet_server.serving import uvicorn_config

    demo_dir = DEMO_DIR
    demo_dir.mkdir(parents=True, exist_ok=True)
    external = os.environ.get("MQTT_URL")
    protocol = os.environ.get("MQTT_PROTOCOL", "5" if external else "3.1.1")
    broker = None
    if external:
        mqtt_url = external
    else:
        broker_port = _free_port(DEMO_BROKER_PORT)
        broker = await start_embedded_broker(broker_port)
        mqtt_url = f"mqtt://127.0.0.1:{broker_port}"
    settings, password, tokens = await asyncio.to_thread(
        _prepare_server, demo_dir, mqtt_url, protocol
    )
    state = {"mqtt_url": mqtt_url, "protocol": protocol}
    (demo_dir / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    config = uvicorn_config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    server_url = f"ws://127.0.0.1:{port}/ws/counter"
    counters = start_counters(mqtt_url, protocol, demo_dir, server_url, tokens)
    _announce(port, password, mqtt_url, protocol)
    try:
        await serving
    finally:
        await asyncio.to_thread(stop_counters, counters)
        if broker is not None:
            await broker.shutdown()


def _announce(port: int, password: str, mqtt_url: str, protocol: str) -> None:
    lines = [
        "",
        "Guichet Proche — démonstration",
        f"  Tableau de bord : http://127.0.0.1:{port}/",
        f"  Identifiant     : {ADMIN_USERNAME}",
        f"  Mot de passe    : {password}",
        f"  Broker MQTT     : {mqtt_url} (MQTT {protocol})",
        "",
        f"  Agents (même mot de passe), console : http://127.0.0.1:{port}/agent",
        *(f"    agent-{c.service:<15} répond au guichet de {c.site}" for c in COUNTERS),
        "",
        f"  Accueil (même mot de passe), réservations : http://127.0.0.1:{port}/reception",
        *(f"    {reception_login(c):<33} {c.site}" for c in COUNTERS),
        "",
        "  Appeler depuis un guichet : guichet demo press monts-de-chalus",
        "  (appui long, pour raccrocher : guichet demo press monts-de-chalus --long)",
        "  Ctrl-C pour tout arrêter.",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def main(port: int = 8000) -> int:
    setup_logging("WARNING", json_lines=False)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(port))
    return 0
