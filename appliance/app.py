"""The counter's composition root: config → hardware, outbox, fleet link, supervised loops.

``main(path)`` is what ``guichet appliance run --config FILE`` calls (a systemd service):
it loads the config (a bad one: one line on stderr, exit 2), sets up JSON logging tagged
with the device id, runs ``Appliance`` until SIGTERM/SIGINT and stops it in order — the
fleet is told "offline" within two seconds. ``Appliance`` is usable in-process by tests.

Readiness comes first: once the hardware and the outbox are up, systemd hears READY=1 and
the watchdog is fed for the whole life of the process. Then, on a counter that has a
token and no credentials yet, enrolment (``appliance/enrol.py``), for as long as the
Pays takes to approve: the screen and the light say what is happening and show the
request's code (``appliance/enrol_wait.py``); a refusal stays on the screen (and goes on the
card) until the technician acts. Then the counter serves.

What runs, each under the supervisor (a crash degrades that part, is reported as an
``error`` event and restarted; it never takes the counter down):
- the fleet link (status, outbox drain, commands, config);
- telemetry every ``telemetry_interval_s`` (changeable by the server), plus an ``error``
  event when a peripheral *enters* the error state — on transitions, not on every tick;
- events (hot-plug changes, calls, errors) and survey answers are written to the outbox
  by ``emit``/``record_survey`` before they return: on disk before the code that produced
  them goes on, so a crash right after loses none (issue 12, finding 14);
- the status light: IDLE while the fleet is reachable, FAULT once it has been unreachable
  for ``FAULT_AFTER_S``;
- with ``[call] server_url`` set, the call agent instead (``appliance/call``): button,
  signalling link, WebRTC peer, screen; it owns the light and the screen, follows the
  schedule of the fleet's ``config`` and sends the questionnaire's answers as ``survey``;
- (outside it, from the start) the systemd watchdog ping, when systemd asks for one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import guichet
from appliance import enrol, sdnotify
from appliance.call.setup import build_call_agent
from appliance.config import ApplianceConfig
from appliance.enrol_wait import enrol_until_stopped
from appliance.errors import OutboxError
from appliance.fleet.commands import (
    CommandFailed,
    CommandHandler,
    Handler,
    simulated_press,
    simulated_skip,
)
from appliance.fleet.link import FleetLink
from appliance.fleet.outbox import OUTBOX_FILE, Outbox
from appliance.fleet.settings import RuntimeSettings
from appliance.fleet.tls import https_context
from appliance.fleet.upload import Uploader
from appliance.hw.journal import JournalctlLogs, under_systemd
from appliance.hw.ports import LightPattern, RemoteBundle, UsbChange, UsbDevice
from appliance.hw.ports.controls import SimulatedButton
from appliance.hw.ports.logs import RingLogs
from appliance.hw.sane.scanner import SaneScanner
from appliance.remote_actions import RemoteActions
from appliance.selftest import unattended_selftest
from appliance.supervisor import ComponentHealth, Supervisor
from appliance.support_files import SupportFiles
from appliance.telemetry import collect
from appliance.update_agent import UpdateAgent
from appliance.update_fetch import Fetch
from appliance.wiring import Hardware, build_hardware
from guichet import contract
from guichet.updates import UpdateOrder

if TYPE_CHECKING:
    from appliance.call.agent import CallAgent

logger = logging.getLogger(__name__)

FAULT_AFTER_S = 120.0  # a broker restart or a network blip must not flash FAULT at citizens
PERIPHERALS = ("camera", "printer", "scanner", "button")
CLOCK_PROBE_TIMEOUT_S = 5.0  # the system probe at start; the first telemetry tells anyway
ROTATE_RESTART_S = 2.0  # the ack of rotate_credentials goes out before the counter restarts

EventData = dict[str, contract.Scalar]


def new_event(
    kind: contract.EventKind,
    data: EventData | None = None,
    *,
    clock_synchronised: bool | None = None,
) -> contract.Event:
    return contract.Event(
        id=uuid.uuid4(),
        at=contract.utcnow(),
        kind=kind,
        data=data or {},
        clock_synchronised=clock_synchronised,
    )


class Appliance:
    """One counter's agent. ``await run()`` until ``await stop()``."""

    def __init__(
        self,
        config: ApplianceConfig,
        *,
        fault_after_s: float = FAULT_AFTER_S,
        build: Callable[[ApplianceConfig, asyncio.AbstractEventLoop], Hardware] = build_hardware,
        enrol_poll_s: float = enrol.POLL_INTERVAL_S,
    ) -> None:
        self.config = config
        self.fault_after_s = fault_after_s
        self.enrol_poll_s = enrol_poll_s
        self._build = build
        self.supervisor = Supervisor(on_change=self._on_health_change)
        self.settings = RuntimeSettings(
            config.fleet.telemetry_interval_s, store_dir=config.device.data_dir
        )
        self.clock_synchronised: bool | None = None  # from the system probe, each tick
        self._peripheral_health: dict[str, contract.DeviceHealth] = {}
        self._reported_drops = 0
        self._stop_requested = asyncio.Event()
        self._started = False
        self._ready = asyncio.Event()
        self._finished = asyncio.Event()
        self._hardware: Hardware | None = None
        self._link: FleetLink | None = None
        self._outbox: Outbox | None = None
        self.call_agent: CallAgent | None = None  # set at start when calls are configured
        # Remote support's logs: systemd's journal when run as its unit, else what this
        # process logged since it started (kept in memory while it runs).
        self.logs: RingLogs | JournalctlLogs = JournalctlLogs() if under_systemd() else RingLogs()

    @property
    def hardware(self) -> Hardware:
        if self._hardware is None:
            raise RuntimeError("the appliance is not running")
        return self._hardware

    @property
    def link(self) -> FleetLink:
        if self._link is None:
            raise RuntimeError("the appliance is not running")
        return self._link

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def stop(self) -> None:
        """Ask for an orderly stop and wait for it (``run()`` returns)."""
        self._stop_requested.set()
        if self._started:
            await self._finished.wait()

    def request_stop(self) -> None:
        """For signal handlers: ask for a stop without waiting."""
        self._stop_requested.set()

    def emit(self, kind: contract.EventKind, data: EventData | None = None) -> None:
        """Store an event in the outbox, fsynced, before returning (callable from callbacks
        on the loop): what the caller does next never outruns its record."""
        event = new_event(kind, data, clock_synchronised=self.clock_synchronised)
        self._store_now(contract.Kind.EVENT, event, event.kind.value)

    def record_survey(self, answer: contract.SurveyAnswer) -> None:
        """Questionnaire answers: into the outbox, fsynced, before returning; published
        (QoS 1) when connected. Stamped with the clock's state when they were given."""
        answer = answer.model_copy(update={"clock_synchronised": self.clock_synchronised})
        self._store_now(contract.Kind.SURVEY, answer, "survey")

    def _store_now(self, kind: contract.Kind, message: contract.WireMessage, what: str) -> None:
        outbox = self._outbox
        if outbox is None:
            logger.error("message lost: the outbox is not open", extra={"event_kind": what})
            return
        try:
            outbox.append_now(
                contract.topic(self.config.device.id, kind),
                contract.encode(message),
                contract.KINDS[kind].qos,
            )
        except (OutboxError, RuntimeError) as exc:
            logger.error("message lost", extra={"event_kind": what, "error": str(exc)})

    # --- lifetime ------------------------------------------------------------------------

    async def run(self) -> None:
        config = self.config
        self._started = True
        # Adapters only set themselves up here (pins, watcher threads); slow probing
        # happens later, through their async methods.
        try:
            hardware = self._build(config, asyncio.get_running_loop())
        except BaseException:
            self._finished.set()
            raise
        self._hardware = hardware
        try:
            outbox = await Outbox.open(
                config.device.data_dir / OUTBOX_FILE, config.fleet.outbox_max_messages
            )
        except BaseException:
            hardware.close()
            self._finished.set()
            raise
        self._outbox = outbox
        self._reported_drops = outbox.dropped_total
        watchdog = None
        if (every_s := sdnotify.watchdog_interval_s()) is not None:
            watchdog = asyncio.create_task(_ping_watchdog(every_s), name="watchdog")
        # Ready before enrolment: a counter waiting hours for a human is not a failed start.
        sdnotify.notify("READY=1")
        ring = None if isinstance(self.logs, JournalctlLogs) else self.logs.install()
        try:
            if await self._enrolled(hardware):
                await self._run_with(hardware, outbox)
        finally:
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.gather(watchdog, return_exceptions=True)
            hardware.close()
            if ring is not None:
                ring.uninstall()
            self._outbox = None
            await outbox.close()
            self._finished.set()
            logger.info("counter stopped")

    async def _run_with(self, hardware: Hardware, outbox: Outbox) -> None:
        await self.settings.load_stored()
        commands = CommandHandler(self.settings)
        if self.config.fleet.enrolment_url is not None:
            commands.register("rotate_credentials", self._rotate_credentials)
        link = FleetLink(self.config, outbox, self.settings, commands)
        self._link = link
        hardware.hotplug.watch(self._on_usb_change)
        if hardware.audio_routing is not None:  # a headset already plugged in takes the call
            for usb in await hardware.hotplug.devices():
                hardware.audio_routing.usb_changed(UsbChange.ADDED, usb)
        self.clock_synchronised = await _clock_synchronised(hardware)
        self.emit(
            contract.EventKind.COUNTER_STARTED,
            {"software_version": guichet.__version__, "site": self.config.device.site},
        )
        components: dict[str, Callable[[], Awaitable[None]]] = {
            "fleet-link": link.run,
            "telemetry": self._report_telemetry,
        }
        agent = build_call_agent(
            self.config, hardware, self.settings, emit=self.emit, submit_survey=self.record_survey
        )
        if agent is not None:
            self.call_agent = agent
            components["call"] = agent.run
            if hardware.audio_routing is not None:  # the screen says where the call is heard
                hardware.audio_routing.when_changed(agent.audio_route_changed)
        else:
            components["status-light"] = self._show_fleet_state
        if isinstance(hardware.button, SimulatedButton):
            _register_remote_finger(commands, hardware.button, agent)
        RemoteActions(
            settings=self.settings,
            power=hardware.power,
            volume=hardware.volume,
            backlight=hardware.backlight,
            stop=self.request_stop,
            busy=self._occupied,
            run_checks=lambda: unattended_selftest(self.config, hardware),
            emit=self.emit,
            test_call=_line_test(agent),
            support=SupportFiles(
                screen=hardware.screen,
                logs=self.logs,
                uploader=Uploader.of(self.config),
                busy=self._occupied,
            ),
        ).register(commands)
        updates = self._update_agent(hardware, link)
        updates.register(commands)
        async with asyncio.TaskGroup() as group:
            supervised = group.create_task(self.supervisor.run(components))
            gate = group.create_task(updates.health_gate(), name="health-gate")
            self._ready.set()
            logger.info("counter started", extra={"version": guichet.__version__})
            await self._stop_requested.wait()
            sdnotify.notify("STOPPING=1")
            await link.stop()
            await commands.close()
            await updates.close()
            gate.cancel()
            supervised.cancel()

    def _update_agent(self, hardware: Hardware, link: FleetLink) -> UpdateAgent:
        """Software updates: the ``update`` command and, at start, the health gate."""
        config = self.config

        def make_fetch(order: UpdateOrder, dest: Path) -> Fetch:
            fleet = config.fleet
            return Fetch(
                order.bundle_url, dest, order.size, order.sha256,
                fleet.username, fleet.password, https_context(fleet.tls),
            )  # fmt: skip

        def make_remote(order: UpdateOrder) -> RemoteBundle:
            fleet = config.fleet
            return RemoteBundle(order.bundle_url, fleet.username, fleet.password,
                                fleet.tls.ca_file)  # fmt: skip

        def report(progress: contract.UpdateProgress) -> None:
            self._store_now(contract.Kind.UPDATE, progress, "update")

        return UpdateAgent(
            updater=hardware.updater,
            power=hardware.power,
            data_dir=config.device.data_dir,
            running=guichet.__version__,
            busy=self._occupied,
            online=link.wait_connected,
            run_checks=lambda: unattended_selftest(self.config, hardware),
            report=report,
            make_fetch=make_fetch,
            make_remote=make_remote if config.updates.streaming else None,
            health_gate_s=config.updates.health_gate_s,
        )

    async def _enrolled(self, hardware: Hardware) -> bool:
        """Credentials in place (stored, or enrolled now); False: do not serve."""
        enrolled = await enrol_until_stopped(
            self.config, hardware.screen, hardware.light, self._stop_requested, self.enrol_poll_s
        )
        if enrolled is None:
            return False
        self.config = enrolled
        return True

    async def _rotate_credentials(self, command: contract.Command) -> str:
        """Collect new credentials, then stop: systemd restarts the counter with them."""
        poll = command.args.get("poll")
        if not isinstance(poll, str):
            raise CommandFailed("secret de suivi absent")
        try:
            await enrol.rotate(self.config, poll)
        except enrol.EnrolmentError as exc:
            raise CommandFailed(f"renouvellement impossible : {exc}") from None
        asyncio.get_running_loop().call_later(ROTATE_RESTART_S, self.request_stop)
        return "identifiants renouvelés ; redémarrage"

    def _occupied(self) -> str | None:
        """What the counter is doing with a citizen, if anything (remote support asks)."""
        return self.call_agent.occupied() if self.call_agent is not None else None

    # --- components ----------------------------------------------------------------------

    async def _report_telemetry(self) -> None:
        hw = self.hardware
        while True:
            route = hw.audio_routing.route if hw.audio_routing is not None else None
            telemetry = await collect(
                hw.system, hw.camera, hw.printer, hw.scanner, hw.button, audio_route=route
            )
            self.clock_synchronised = telemetry.clock_synchronised
            self._note_peripherals(telemetry.peripherals)
            self._note_outbox_drops()
            sent = await self.link.send(contract.Kind.TELEMETRY, telemetry)
            await self._next_tick(sent)

    async def _next_tick(self, sent: bool) -> None:
        """Wait one interval, cut short by a settings change or, if the last one could not
        be sent, by the link's next connection."""
        waits: list[Awaitable[object]] = [self.settings.wait_changed(self.settings.generation)]
        if not sent:
            waits.append(self.link.wait_connected())
        await _first_of(waits, within_s=self.settings.telemetry_interval_s)

    def _note_peripherals(self, peripherals: contract.Peripherals) -> None:
        for name in PERIPHERALS:
            state: contract.Peripheral = getattr(peripherals, name)
            before = self._peripheral_health.get(name)
            self._peripheral_health[name] = state.health
            if state.health is contract.DeviceHealth.ERROR and before != state.health:
                self.emit(
                    contract.EventKind.ERROR,
                    {"component": name, "detail": state.detail, "model": state.model},
                )

    def _note_outbox_drops(self) -> None:
        dropped = self._outbox.dropped_total if self._outbox is not None else 0
        if dropped > self._reported_drops:
            self.emit(
                contract.EventKind.ERROR,
                {
                    "component": "outbox",
                    "detail": "pleine : les plus anciens messages sont perdus",
                    "dropped_total": dropped,
                },
            )
            self._reported_drops = dropped

    async def _show_fleet_state(self) -> None:
        light, link = self.hardware.light, self.link
        while True:
            try:
                async with asyncio.timeout(self.fault_after_s):
                    await link.wait_connected()
            except TimeoutError:
                light.show(LightPattern.FAULT)
                await link.wait_connected()
            light.show(LightPattern.IDLE)
            await link.wait_disconnected()

    # --- callbacks (on the loop) ----------------------------------------------------------

    def _on_usb_change(self, change: UsbChange, device: UsbDevice) -> None:
        if self.hardware.audio_routing is not None:  # a headset plugged in or out
            self.hardware.audio_routing.usb_changed(change, device)
        scanner = self.hardware.scanner
        if isinstance(scanner, SaneScanner):
            scanner.invalidate()  # a scanner plugged in is seen at once, not in 5 minutes
        if self.call_agent is not None:
            self.call_agent.devices_changed()
        kind = (
            contract.EventKind.PERIPHERAL_PLUGGED
            if change is UsbChange.ADDED
            else contract.EventKind.PERIPHERAL_UNPLUGGED
        )
        self.emit(
            kind,
            {
                "kind": device.kind,
                "vendor_id": device.vendor_id,
                "product_id": device.product_id,
                "product": device.product,
                "path": device.path,
            },
        )

    def _on_health_change(self, health: ComponentHealth) -> None:
        if health.state == "degraded":
            self.emit(
                contract.EventKind.ERROR,
                {
                    "component": health.name,
                    "detail": health.last_error,
                    "restarts": health.restarts,
                },
            )


def _register_remote_finger(
    commands: CommandHandler, button: SimulatedButton, agent: CallAgent | None
) -> None:
    """The demo's commands on a simulated button: press it, and leave the questionnaire;
    with a call agent, both say what the counter is doing afterwards."""
    describe = agent.summary if agent is not None else None
    commands.register("press_button", simulated_press(button, describe))
    if agent is not None:
        commands.register("skip_survey", simulated_skip(agent.skip_survey, agent.summary))


def _line_test(agent: CallAgent | None) -> Handler | None:
    """The test call's handler when this counter makes calls (aiortc loaded only then)."""
    if agent is None:
        return None
    from appliance.call.line_test import line_test_handler

    return line_test_handler(agent)


async def _first_of(waits: list[Awaitable[object]], *, within_s: float) -> None:
    """Return when the first of ``waits`` completes or after ``within_s``."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)


async def _clock_synchronised(hardware: Hardware) -> bool | None:
    """The clock's state before the first telemetry, for the first events' dates."""
    try:
        async with asyncio.timeout(CLOCK_PROBE_TIMEOUT_S):
            return (await hardware.system.snapshot()).clock_synchronised
    except Exception as exc:  # a probe that fails must not keep the counter from starting
        logger.warning("clock state unknown at start", extra={"error": str(exc)})
        return None


async def _ping_watchdog(every_s: float) -> None:
    while True:
        sdnotify.notify("WATCHDOG=1")
        await asyncio.sleep(every_s)
