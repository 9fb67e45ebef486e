"""The counter's side of software updates (issue 13, docs/updates.md): the ``update`` command
and the health gate.

The order: refused (``ok=false``, French) while a citizen is at the counter, or when it is not
for this system or not newer than the running release; else acked at once, then in the
background: RAUC streams the bundle from the fleet server as it installs it to the inactive
slot (the updater port; only the blocks neither slot has cross the line, and an install cut
by the line is tried again, reusing what was written), or — without streaming — the bundle is
fetched into the data partition first (``appliance.update_fetch``, resumed with ``Range``);
then the counter reboots into it with the firmware's tryboot, once nobody is at the counter.
Progress goes out as ``UpdateProgress`` through the outbox (at most every
``PROGRESS_INTERVAL_S``, and at each change of state).

The gate, at each start: booted from a slot not yet committed, the counter has
``health_gate_s`` to be online with the fleet and pass the unattended self-test (the printer
and scanner do not count: a technician replugs them). Then it commits (``mark_good``) and
reports ``committed``; else it reports ``rolled_back`` with why, gives the trial up
(``mark_bad``) and reboots — not during a call — and the firmware boots the old slot. A
trial that never started (the firmware came back to the old slot by itself) is reported
``rolled_back`` too, from the record the order left on the data partition.

The decisions are pure functions (``refusal``, ``gate_failure``); the class does the I/O.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.fleet.commands import CommandFailed, CommandHandler
from appliance.hw.ports import (
    RemoteBundle,
    SlotStatus,
    SystemPower,
    Updater,
    UpdateRefusedError,
    UpdaterError,
)
from appliance.selftest_report import CheckResult, Outcome
from appliance.update_fetch import Fetch, FetchError, fetch_bundle
from guichet import contract
from guichet.errors import ContractError
from guichet.updates import (
    COMPATIBLE,
    HEALTH_GATE_S,
    PROGRESS_INTERVAL_S,
    UPDATE_COMMAND,
    UpdateOrder,
    UpdateState,
    is_newer,
)

logger = logging.getLogger(__name__)

UPDATE_DIR = "mise-a-jour"  # under data_dir: the bundle being fetched, the order's record
RECORD_FILE = "en-cours.json"
IDLE_POLL_S = 5.0  # how often a waiting reboot looks whether the citizen has gone
CHECK_RETRY_S = 30.0  # a failed self-test is tried again within the gate's window
NOT_GATING = frozenset({"printer", "scanner"})  # a technician replugs them: no rollback
# A streamed install the line cut is tried again after these pauses (RAUC itself retries each
# range request five times); what was written is reused through the adaptive index.
STREAM_RETRY_S = (30.0, 120.0, 300.0)

Busy = Callable[[], str | None]
RunChecks = Callable[[], Awaitable[list[CheckResult]]]
Report = Callable[[contract.UpdateProgress], None]
MakeFetch = Callable[[UpdateOrder, Path], Fetch]
MakeRemote = Callable[[UpdateOrder], RemoteBundle]


def refusal(
    order: UpdateOrder,
    *,
    running: str,
    busy: str | None,
    under_way: bool,
    unsupported: str | None = None,
) -> str | None:
    """Why this counter will not take ``order`` now (French, for the ack), or None."""
    if unsupported is not None:
        return unsupported
    if busy is not None:
        return f"Refusée : un usager est au guichet ({busy})"
    if order.compatible != COMPATIBLE:
        return f"Refusée : paquet pour « {order.compatible} », ce guichet est « {COMPATIBLE} »"
    try:
        newer = is_newer(order.release, running)
    except ContractError:
        newer = True  # a running version off the pattern (a developer's build): allow
    if not newer:
        return f"Refusée : la version {order.release} n'est pas plus récente que {running}"
    if under_way:
        return "Refusée : une mise à jour est déjà en cours"
    return None


def gate_failure(results: list[CheckResult]) -> str | None:
    """The self-test's verdict for the gate: None if passed, else French, naming the checks."""
    failed = [r.label for r in results if r.outcome is Outcome.FAILED and r.name not in NOT_GATING]
    if not failed:
        return None
    return "Autotest échoué : " + ", ".join(label.lower() for label in failed)


@dataclass(frozen=True)
class Record:
    """What an order leaves on the data partition for the next start: the release it tries
    and the slot it wrote."""

    release: str
    slot: str

    @classmethod
    def load(cls, path: Path) -> Record | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(release=str(data["release"]), slot=str(data["slot"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"release": self.release, "slot": self.slot}), "utf-8")
        tmp.replace(path)


class UpdateAgent:
    """One counter's updates: ``register`` the command, ``await health_gate()`` at start."""

    def __init__(
        self,
        *,
        updater: Updater,
        power: SystemPower,
        data_dir: Path,
        running: str,
        busy: Busy,
        online: Callable[[], Awaitable[None]],
        run_checks: RunChecks,
        report: Report,
        make_fetch: MakeFetch,
        make_remote: MakeRemote | None = None,
        health_gate_s: float = HEALTH_GATE_S,
        idle_poll_s: float = IDLE_POLL_S,
        check_retry_s: float = CHECK_RETRY_S,
        stream_retry_s: tuple[float, ...] = STREAM_RETRY_S,
    ) -> None:
        """``make_remote``: stream bundles (RAUC reads the URL); None: fetch them first."""
        self._updater = updater
        self._power = power
        self._dir = data_dir / UPDATE_DIR
        self._running = running
        self._busy = busy
        self._online = online
        self._run_checks = run_checks
        self._report = report
        self._make_fetch = make_fetch
        self._make_remote = make_remote
        self._stream_retry_s = stream_retry_s
        self._gate_s = health_gate_s
        self._idle_poll_s = idle_poll_s
        self._check_retry_s = check_retry_s
        self._task: asyncio.Task[None] | None = None
        self._last_state: UpdateState | None = None
        self._last_sent = 0.0

    @property
    def record_path(self) -> Path:
        return self._dir / RECORD_FILE

    def register(self, commands: CommandHandler) -> None:
        commands.register(UPDATE_COMMAND, self._command)

    async def wait(self) -> None:
        """Until the order under way, if any, has done what it could (tests, stop)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # --- the order -----------------------------------------------------------------------

    async def _command(self, command: contract.Command) -> str:
        try:
            order = UpdateOrder.from_args(command.args)
        except ContractError as exc:
            raise CommandFailed(f"ordre de mise à jour illisible : {exc}") from None
        under_way = self._task is not None and not self._task.done()
        why = refusal(order, running=self._running, busy=self._busy(), under_way=under_way,
                      unsupported=self._updater.unsupported())  # fmt: skip
        if why is not None:
            raise CommandFailed(why)
        self._task = asyncio.create_task(self._carry_out(order), name="update")
        return f"Mise à jour vers {order.release} acceptée"

    async def _carry_out(self, order: UpdateOrder) -> None:
        bundle = self._dir / f"guichet-proche-{order.release}.raucb"
        try:
            if self._make_remote is not None:
                await self._stream(order, self._make_remote(order))
            else:
                await self._fetch(order, bundle)
                await self._install(order, bundle)
            status = await self._updater.status()
        except (FetchError, ApplianceError) as exc:
            self._progress(order.release, UpdateState.FAILED, reason=str(exc), force=True)
            return
        except OSError as exc:  # the data partition itself: full, read-only, failing
            reason = f"Carte SD : {exc.strerror or exc}"
            self._progress(order.release, UpdateState.FAILED, reason=reason, force=True)
            return
        finally:
            bundle.unlink(missing_ok=True)
        Record(order.release, status.primary or "").save(self.record_path)
        await self._reboot_when_idle(order.release, UpdateState.INSTALLED, trial=True)

    async def _install(self, order: UpdateOrder, source: Path | RemoteBundle) -> None:
        self._progress(order.release, UpdateState.INSTALLING, percent=0, force=True)

        def installing(percent: int, _step: str) -> None:  # called on the loop
            self._progress(order.release, UpdateState.INSTALLING, percent)

        await self._updater.install(source, installing)

    async def _stream(self, order: UpdateOrder, remote: RemoteBundle) -> None:
        """RAUC reads the bundle from the server as it writes; a cut line: again, later."""
        pauses = list(self._stream_retry_s)
        while True:
            try:
                await self._install(order, remote)
                return
            except UpdateRefusedError:
                raise
            except UpdaterError as exc:
                if not pauses:
                    raise
                pause = pauses.pop(0)
                logger.warning("streamed install failed, trying again",
                               extra={"error": str(exc), "pause_s": pause})  # fmt: skip
                self._progress(order.release, UpdateState.INSTALLING, force=True,
                               reason=f"Nouvel essai dans {round(pause)} s : {exc}")  # fmt: skip
                await asyncio.sleep(pause)

    async def _fetch(self, order: UpdateOrder, bundle: Path) -> None:
        self._progress(order.release, UpdateState.DOWNLOADING, percent=0, force=True)
        loop = asyncio.get_running_loop()

        def fetched(have: int) -> None:
            percent = min(100, have * 100 // order.size)
            loop.call_soon_threadsafe(
                self._progress, order.release, UpdateState.DOWNLOADING, percent
            )

        await asyncio.to_thread(fetch_bundle, self._make_fetch(order, bundle), fetched)

    async def _reboot_when_idle(self, release: str, waiting: UpdateState, *, trial: bool) -> None:
        """Reboot (into the trial, or plainly) once nobody is at the counter; meanwhile the
        fleet reads ``waiting`` with why."""
        while (doing := self._busy()) is not None:
            if self._last_state is not waiting:
                self._progress(release, waiting, reason=f"redémarrage après : {doing}", force=True)
            await asyncio.sleep(self._idle_poll_s)
        if trial:
            self._progress(release, UpdateState.REBOOTING, force=True)
        try:
            await (self._updater.reboot_into_trial() if trial else self._power.reboot())
        except ApplianceError as exc:
            state = UpdateState.FAILED if trial else UpdateState.ROLLED_BACK
            self._progress(release, state, reason=f"redémarrage impossible : {exc}", force=True)

    # --- the gate ------------------------------------------------------------------------

    async def health_gate(self) -> None:
        """At start: commit the booted slot, or roll back, or report a trial that never
        booted; nothing when the counter runs its committed slot with no order pending."""
        try:
            status = await self._updater.status()
        except ApplianceError as exc:
            logger.error("updater status unreadable", extra={"error": str(exc)})
            return
        record = Record.load(self.record_path)
        if not status.on_trial:
            if record is not None and status.booted != record.slot:
                self._finish(record.release, status, UpdateState.ROLLED_BACK,
                             "Le nouveau système n'a pas démarré ; le guichet est revenu"
                             " à la version précédente.")  # fmt: skip
            elif record is not None:  # committed, but the report was not stored: say it now
                self._finish(record.release, status, UpdateState.COMMITTED, None)
            return
        release = record.release if record is not None else status.booted_version
        failure = await self._gate(status)
        if failure is None:
            try:
                await self._updater.mark_good()
            except ApplianceError as exc:
                failure = f"Validation impossible : {exc}"
            else:
                self._finish(release, await self._updater.status(), UpdateState.COMMITTED, None)
                return
        logger.error("health gate failed", extra={"reason": failure})
        try:
            await self._updater.mark_bad()
        except ApplianceError as exc:  # a plain reboot goes back all the same
            logger.error("mark-bad failed", extra={"error": str(exc)})
        self._finish(release, status, UpdateState.ROLLED_BACK, failure)
        await self._reboot_when_idle(release or "", UpdateState.ROLLED_BACK, trial=False)

    async def _gate(self, status: SlotStatus) -> str | None:
        """None when online and the self-test passed within the window, else why not."""
        minutes = round(self._gate_s / 60)
        failure = f"Le guichet n'a pas rejoint la flotte en {minutes} minutes"
        deadline = time.monotonic() + self._gate_s
        try:
            async with asyncio.timeout(self._gate_s):
                await self._online()
                while True:
                    failure = gate_failure(await self._run_checks()) or ""
                    if not failure:
                        return None
                    remaining = deadline - time.monotonic()
                    await asyncio.sleep(min(self._check_retry_s, max(remaining, 0.0)))
        except TimeoutError:
            return failure

    def _finish(
        self, release: str | None, status: SlotStatus, state: UpdateState, reason: str | None
    ) -> None:
        self._progress(release, state, reason=reason, force=True, status=status)
        self.record_path.unlink(missing_ok=True)

    # --- progress ------------------------------------------------------------------------

    def _progress(
        self,
        release: str | None,
        state: UpdateState,
        percent: int | None = None,
        *,
        reason: str | None = None,
        force: bool = False,
        status: SlotStatus | None = None,
    ) -> None:
        now = time.monotonic()
        if not force and state is self._last_state and now - self._last_sent < PROGRESS_INTERVAL_S:
            return
        self._last_state, self._last_sent = state, now
        self._report(
            contract.UpdateProgress(
                id=uuid.uuid4(),
                at=contract.utcnow(),
                release=release,
                state=state,
                percent=percent,
                reason=reason[:512] if reason else None,
                slot=status.booted if status is not None else None,
                booted_version=status.booted_version if status is not None else None,
            )
        )
