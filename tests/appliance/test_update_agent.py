"""The counter's update agent (appliance/update_agent.py): the ``update`` command end to end —
a real HTTPS server on loopback (basic authentication, ranges, a cut mid-way), the bundle on
disk checked, the simulated updater standing for RAUC (its adapter is tested against a real
RAUC in test_hw_rauc.py) — and the health gate after the trial boot."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import random
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from appliance.fleet.commands import CommandHandler
from appliance.fleet.settings import RuntimeSettings
from appliance.hw.ports.system import SimulatedSystemPower
from appliance.hw.ports.updater import (
    BundleSource,
    InstallProgress,
    RemoteBundle,
    SimulatedUpdater,
    UpdateRefusedError,
    UpdaterError,
)
from appliance.selftest_report import CheckResult, Outcome
from appliance.update_agent import UpdateAgent, gate_failure, refusal
from appliance.update_fetch import Fetch
from guichet import contract
from guichet.updates import COMPATIBLE, UpdateOrder, UpdateState

BUNDLE = random.Random(13).randbytes(3 * 1024 * 1024 + 17)
USER, PASSWORD = "guichet-test", "s3cret-broker-password"


class Server(http.server.BaseHTTPRequestHandler):
    cut_once = True
    ranges: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        wanted = self.headers.get("Range")
        Server.ranges.append(wanted)
        start = int(wanted.removeprefix("bytes=").rstrip("-")) if wanted else 0
        body = BUNDLE[start:]
        self.send_response(206 if wanted else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Server.cut_once:  # the line drops after the first MiB
            Server.cut_once = False
            self.wfile.write(body[: 1024 * 1024])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:true",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
         "-addext", "subjectKeyIdentifier=hash", "-addext", "authorityKeyIdentifier=keyid"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture
def server(tls: tuple[Path, Path]) -> Iterator[str]:
    Server.cut_once, Server.ranges = True, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls[1], tls[0])
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/api/v1/releases/1.5.0/bundle"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _order(url: str, **changes: object) -> contract.Command:
    order = UpdateOrder(
        release="1.5.0",
        bundle_url=url,
        size=len(BUNDLE),
        sha256=hashlib.sha256(BUNDLE).hexdigest(),
        compatible=COMPATIBLE,
    )
    args = {**order.to_args(), **changes}
    return contract.Command(request_id=uuid.uuid4(), at=contract.utcnow(), name="update", args=args)


class Counter:
    def __init__(
        self,
        tmp_path: Path,
        tls: tuple[Path, Path],
        updater: SimulatedUpdater,
        *,
        stream: bool = False,
    ) -> None:
        self.updater = updater
        self.power = SimulatedSystemPower()
        self.busy: str | None = None
        self.reports: list[contract.UpdateProgress] = []
        self.checks: list[CheckResult] = [_check("camera", Outcome.OK)]
        self.data = tmp_path / "data"
        context = ssl.create_default_context(cafile=str(tls[1]))

        def make_fetch(order: UpdateOrder, dest: Path) -> Fetch:
            url, size, sha256 = order.bundle_url, order.size, order.sha256
            return Fetch(url, dest, size, sha256, USER, PASSWORD, context, pauses=(0.0,))

        def make_remote(order: UpdateOrder) -> RemoteBundle:
            return RemoteBundle(order.bundle_url, USER, PASSWORD, tls[1])

        async def online() -> None:
            return None

        async def run_checks() -> list[CheckResult]:
            return self.checks

        self.agent = UpdateAgent(
            updater=updater, power=self.power, data_dir=self.data, running="1.4",
            busy=lambda: self.busy, online=online, run_checks=run_checks,
            report=self.reports.append, make_fetch=make_fetch,
            make_remote=make_remote if stream else None, stream_retry_s=(0.01, 0.01),
            health_gate_s=0.5, idle_poll_s=0.01, check_retry_s=0.05,
        )  # fmt: skip
        self.commands = CommandHandler(RuntimeSettings(30))
        self.agent.register(self.commands)

    @property
    def states(self) -> list[UpdateState]:
        return [r.state for r in self.reports]


def _check(name: str, outcome: Outcome) -> CheckResult:
    labels = {"camera": "Caméra", "printer": "Imprimante", "broker": "Serveur MQTT"}
    return CheckResult(name, labels[name], outcome, "")


async def test_an_order_is_fetched_installed_and_tried(
    tmp_path: Path, tls: tuple[Path, Path], server: str
) -> None:
    counter = Counter(tmp_path, tls, SimulatedUpdater(version="1.4"))
    counter.updater.next_version = "1.5.0"
    ack = await counter.commands.handle(_order(server))
    assert ack.ok, ack.detail
    await counter.agent.wait()
    assert Server.ranges == [None, f"bytes={1024 * 1024}-"]  # resumed after the cut
    assert counter.states[0] is UpdateState.DOWNLOADING
    assert counter.states[-2:] == [UpdateState.INSTALLING, UpdateState.REBOOTING]
    assert counter.updater.trial_reboots == 1
    assert len(counter.updater.installed) == 1
    assert not list((counter.data / "mise-a-jour").glob("*.raucb"))  # not kept after install
    # The trial boots: online, self-test passed → committed, from the new slot.
    counter.updater.firmware_boots_trial()
    await counter.agent.health_gate()
    last = counter.reports[-1]
    assert (last.state, last.release, last.slot, last.booted_version) == (
        UpdateState.COMMITTED, "1.5.0", "B", "1.5.0",
    )  # fmt: skip
    assert counter.updater.committed == "B"
    assert not counter.agent.record_path.exists()
    assert counter.power.reboots == 0


class FlakyUpdater(SimulatedUpdater):
    """Fails its next installs with these errors (a cut line, a refusal), then installs."""

    def __init__(self, *errors: UpdaterError) -> None:
        super().__init__(version="1.4")
        self.errors = list(errors)
        self.attempts = 0

    async def install(self, bundle: BundleSource, progress: InstallProgress) -> None:
        self.attempts += 1
        if self.errors:
            progress(10, "Checking bundle")
            raise self.errors.pop(0)
        await super().install(bundle, progress)


async def test_a_streamed_order_goes_to_rauc_with_the_counter_s_credentials(
    tmp_path: Path, tls: tuple[Path, Path]
) -> None:
    counter = Counter(tmp_path, tls, SimulatedUpdater(version="1.4"), stream=True)
    url = "https://flotte.example.fr/api/v1/bundles/1.5.0"
    assert (await counter.commands.handle(_order(url))).ok
    await counter.agent.wait()
    assert counter.updater.installed == [RemoteBundle(url, USER, PASSWORD, tls[1])]
    assert UpdateState.DOWNLOADING not in counter.states  # RAUC reads as it writes
    assert counter.states == [UpdateState.INSTALLING] * (len(counter.states) - 1) + [
        UpdateState.REBOOTING
    ]
    assert not (counter.data / "mise-a-jour").exists() or not list(
        (counter.data / "mise-a-jour").glob("*.raucb")
    )
    assert counter.updater.trial_reboots == 1


async def test_a_streamed_install_cut_by_the_line_is_tried_again(
    tmp_path: Path, tls: tuple[Path, Path]
) -> None:
    cut = UpdaterError("Installation refusée par RAUC : request failed (no more retries)")
    updater = FlakyUpdater(cut, cut)
    counter = Counter(tmp_path, tls, updater, stream=True)
    assert (await counter.commands.handle(_order("https://f/api/v1/bundles/1.5.0"))).ok
    await counter.agent.wait()
    assert updater.attempts == 3
    retried = [r.reason for r in counter.reports if r.reason and "Nouvel essai" in r.reason]
    assert len(retried) == 2
    assert "request failed" in retried[0]
    assert counter.states[-1] is UpdateState.REBOOTING


async def test_a_refused_or_too_often_cut_stream_fails_without_a_reboot(
    tmp_path: Path, tls: tuple[Path, Path]
) -> None:
    refused = UpdateRefusedError("Signature refusée : ce paquet n'est pas signé par l'autorité")
    updater = FlakyUpdater(refused)
    counter = Counter(tmp_path, tls, updater, stream=True)
    assert (await counter.commands.handle(_order("https://f/api/v1/bundles/1.5.0"))).ok
    await counter.agent.wait()
    assert updater.attempts == 1  # a refusal is final: not tried again
    assert (counter.states[-1], counter.reports[-1].reason) == (UpdateState.FAILED, str(refused))
    cut = UpdaterError("Installation refusée par RAUC : request failed")
    updater = FlakyUpdater(cut, cut, cut)
    counter = Counter(tmp_path / "2", tls, updater, stream=True)
    assert (await counter.commands.handle(_order("https://f/api/v1/bundles/1.5.0"))).ok
    await counter.agent.wait()
    assert updater.attempts == 3  # the first try and the two pauses given
    assert counter.states[-1] is UpdateState.FAILED
    assert updater.trial_reboots == 0


async def test_a_failed_self_test_rolls_back_after_the_call(
    tmp_path: Path, tls: tuple[Path, Path], server: str
) -> None:
    counter = Counter(tmp_path, tls, SimulatedUpdater(version="1.4"))
    assert (await counter.commands.handle(_order(server))).ok
    await counter.agent.wait()
    counter.updater.firmware_boots_trial()
    counter.checks = [_check("camera", Outcome.FAILED), _check("printer", Outcome.FAILED)]
    counter.busy = "appel en cours"
    task = asyncio.create_task(counter.agent.health_gate())
    while UpdateState.ROLLED_BACK not in counter.states:
        await asyncio.sleep(0.01)
    assert counter.power.reboots == 0  # never during a call
    counter.busy = None
    await task
    rolled = next(r for r in counter.reports if r.state is UpdateState.ROLLED_BACK)
    assert rolled.reason == "Autotest échoué : caméra"  # the printer does not count
    assert counter.updater.committed == "A"
    assert counter.power.reboots == 1
    counter.updater.firmware_boots_plain()
    assert (await counter.updater.status()).booted == "A"


async def test_a_trial_the_firmware_never_booted_is_reported(
    tmp_path: Path, tls: tuple[Path, Path], server: str
) -> None:
    counter = Counter(tmp_path, tls, SimulatedUpdater(version="1.4"))
    assert (await counter.commands.handle(_order(server))).ok
    await counter.agent.wait()
    counter.updater.firmware_boots_plain()  # B hung; the firmware went back to A
    await counter.agent.health_gate()
    assert counter.reports[-1].state is UpdateState.ROLLED_BACK
    assert "n'a pas démarré" in (counter.reports[-1].reason or "")


async def test_refused_while_busy_and_a_corrupt_bundle_fails(
    tmp_path: Path, tls: tuple[Path, Path], server: str
) -> None:
    counter = Counter(tmp_path, tls, SimulatedUpdater(version="1.4"))
    counter.busy = "appel en cours"
    ack = await counter.commands.handle(_order(server))
    assert not ack.ok
    assert ack.detail == "Refusée : un usager est au guichet (appel en cours)"
    counter.busy = None
    ack = await counter.commands.handle(_order(server, sha256="0" * 64))
    assert ack.ok
    await counter.agent.wait()
    assert counter.reports[-1].state is UpdateState.FAILED
    assert "SHA-256" in (counter.reports[-1].reason or "")
    assert counter.updater.installed == []


def test_refusals_and_the_gate_verdict() -> None:
    order = UpdateOrder.from_args(_order("https://fleet.example.fr/b").args)
    assert refusal(order, running="1.4", busy=None, under_way=False) is None
    old = "Refusée : le chargeur de démarrage du Raspberry Pi (EEPROM du 01/06/2021) …"
    assert refusal(order, running="1.4", busy=None, under_way=False, unsupported=old) == old
    assert "plus récente" in (refusal(order, running="1.5", busy=None, under_way=False) or "")
    assert "déjà" in (refusal(order, running="1.4", busy=None, under_way=True) or "")
    other = order.model_copy(update={"compatible": "autre"})
    assert "autre" in (refusal(other, running="1.4", busy=None, under_way=False) or "")
    assert gate_failure([_check("printer", Outcome.FAILED)]) is None
    assert gate_failure([_check("broker", Outcome.FAILED)]) == "Autotest échoué : serveur mqtt"
