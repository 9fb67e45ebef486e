"""Benchmark: how fast the fleet server's MQTT ingest stores a large fleet's messages.

A private Mosquitto on loopback; ``COUNTERS`` simulated counters (device ids) publish, from
``PUBLISHERS`` threads, a retained status each and then ``ROUNDS`` rounds of telemetry
(QoS 0) and events (QoS 1, unique ids), pre-encoded with the real contract. Two
subscribers receive the same stream, each in its own process:

- the real ``Ingest`` (manual acks after commit) into SQLite, then PostgreSQL when one
  answers (``GUICHET_TEST_POSTGRES_URL`` or 127.0.0.1:5432);
- a bare paho subscriber to the same filter that only counts.

Prints per database: messages/s stored, the bare subscriber's receive rate in the same run,
their ratio, and the ingest process's CPU seconds per 1,000 messages; with ``--runs N``, each
database N times and the medians. ``--phases`` adds where the ingest's writer thread spends
its time (``bench/ingest_phases.py``) and the CPU of its two threads; ``--no-store`` runs the
same ingest with a store that writes nothing (decode, count, acknowledge): the ratio no
storage could exceed on this machine; ``--writer-only`` replays the same messages through the
writer alone, in this process (no broker, no paho): the write path's own rate and CPU.
Run: ``.venv/bin/python bench/fleet_ingest.py`` (about a minute; ``--help``).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import queue
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet_server.db import make_engine, make_session_factory, migrate  # noqa: E402
from fleet_server.metrics import Metrics  # noqa: E402
from fleet_server.mqtt import store, writer  # noqa: E402
from fleet_server.mqtt.ingest import Ingest  # noqa: E402
from fleet_server.mqtt.writer import Incoming  # noqa: E402
from fleet_server.settings import Settings  # noqa: E402
from guichet import contract  # noqa: E402
from guichet.contract import Kind  # noqa: E402
from tests.support.databases import fresh_database, postgres_available  # noqa: E402
from tests.support.mosquitto import Broker  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import ingest_phases  # noqa: E402

COUNTERS = 2_000
ROUNDS = 5  # telemetry + event per counter per round
PUBLISHERS = 4  # publishing clients, one thread each
EXPECTED = COUNTERS * (1 + 2 * ROUNDS)
IDLE_DONE_S = 3.0  # a subscriber that received nothing new for this long has all it will get
RUN_TIMEOUT_S = 50.0  # per database
POLL_S = 0.005


@dataclass
class Result:
    messages: int
    first: float  # wall-clock time of the first message handled
    last: float  # ... and of the last
    cpu_s: float
    phases: list[str] = field(default_factory=list)  # --phases: lines to print

    @property
    def rate(self) -> float:
        return self.messages / max(self.last - self.first, 1e-9)


# --- subscriber processes ---------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    phases: bool = False  # --phases
    no_store: bool = False  # --no-store


def _ingest_child(db_url: str, mqtt_url: str, options: Options, pipe: Connection) -> None:
    if options.phases:
        ingest_phases.install()
    if options.no_store:  # decode, count and acknowledge; write nothing
        store.apply_batch = lambda _session, items, _settings: [False] * len(items)
    migrate(db_url)
    engine = make_engine(db_url)
    settings = Settings(
        database_url=db_url, mqtt_url=mqtt_url, demo=True, mqtt_client_id="bench-ingest"
    )
    metrics = Metrics()
    ingest = Ingest(settings, make_session_factory(engine), metrics)
    gc.freeze()  # as `guichet fleet ingest` and `serve` do once started
    cpu0 = time.process_time()
    ingest.start()
    ingest.wait_connected(10)
    pipe.send("ready")

    def handled() -> int:
        total = 0.0
        for metric in metrics.registry.collect():
            if metric.name.startswith("guichet_messages_"):
                total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
        return int(total)

    result = _watch(handled)
    result.cpu_s = time.process_time() - cpu0
    if options.phases:
        cpu = ingest_phases.thread_cpu()
        if (server := ingest_phases.postgres_cpu(engine)) is not None:
            cpu["PostgreSQL backends"] = server
        result.phases = ingest_phases.report(result.messages, cpu)
    ingest.stop()
    engine.dispose()
    pipe.send(result)


def _bare_child(mqtt_url: str, pipe: Connection) -> None:
    count = [0]
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        with lock:
            count[0] += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    port = int(mqtt_url.rsplit(":", 1)[1])
    client.connect("127.0.0.1", port)
    client.subscribe(f"{contract.TOPIC_ROOT}/#", qos=1)
    client.loop_start()
    cpu0 = time.process_time()
    pipe.send("ready")
    result = _watch(lambda: count[0])
    result.cpu_s = time.process_time() - cpu0
    client.disconnect()
    client.loop_stop()
    pipe.send(result)


def _watch(progress: object) -> Result:
    """Poll a counter until it reaches EXPECTED or stops moving; time first and last change."""
    assert callable(progress)
    seen, first, last = 0, 0.0, 0.0
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and seen < EXPECTED:
        now_count = progress()
        now = time.time()
        if now_count != seen:
            if seen == 0:
                first = now
            seen, last = now_count, now
        elif seen and now - last > IDLE_DONE_S:
            break
        time.sleep(POLL_S)
    return Result(messages=seen, first=first, last=last, cpu_s=0.0)


# --- publishers -------------------------------------------------------------------------


def _payloads(device_ids: list[str]) -> list[tuple[str, bytes, int, bool]]:
    """Everything one publisher sends, pre-encoded, in order: statuses then rounds."""
    out: list[tuple[str, bytes, int, bool]] = []
    now = contract.utcnow()
    for d in device_ids:
        s = contract.Status(
            state=contract.Presence.ONLINE,
            software_version="bench",
            at=now,
            telemetry_interval_s=30,
        )
        out.append((contract.topic(d, Kind.STATUS), contract.encode(s), 1, True))
    template = _telemetry()
    for _ in range(ROUNDS):
        for d in device_ids:
            out.append((contract.topic(d, Kind.TELEMETRY), template, 0, False))
            e = contract.Event(id=uuid.uuid4(), at=now, kind=contract.EventKind.CALL_ENDED)
            out.append((contract.topic(d, Kind.EVENT), contract.encode(e), 1, False))
    return out


def _telemetry() -> bytes:
    fixture = ROOT / "tests" / "fixtures" / "contract" / "telemetry.json"
    message = contract.decode(Kind.TELEMETRY, fixture.read_bytes())
    return contract.encode(message.model_copy(update={"at": contract.utcnow()}))


def _publish(port: int, batch: list[tuple[str, bytes, int, bool]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(t, p, qos=q, retain=r) for t, p, q, r in batch]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


# --- one run ----------------------------------------------------------------------------


@contextmanager
def _child(target: object, *args: object) -> Iterator[Connection]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(*args, child), daemon=True)  # type: ignore[arg-type]
    process.start()
    try:
        if not parent.poll(30) or parent.recv() != "ready":
            raise RuntimeError(f"{target} did not start")
        yield parent
    finally:
        process.join(RUN_TIMEOUT_S + 10)
        if process.is_alive():
            process.kill()


def run(label: str, db_url: str, workdir: Path, options: Options) -> tuple[Result, Result]:
    """One run against a fresh broker; (stored, received)."""
    broker = Broker(workdir=workdir / f"mosquitto-{label}")
    broker.start()
    try:
        ids = [f"bench-{i:05d}" for i in range(COUNTERS)]
        batches = [_payloads(ids[i::PUBLISHERS]) for i in range(PUBLISHERS)]
        with (
            _child(_ingest_child, db_url, broker.url, options) as ingest,
            _child(_bare_child, broker.url) as bare,
        ):
            started = time.time()
            threads = [threading.Thread(target=_publish, args=(broker.port, b)) for b in batches]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            published = time.time() - started
            stored: Result = ingest.recv()
            received: Result = bare.recv()
    finally:
        broker.stop()
    _report(label, published, stored, received)
    return stored, received


def _report(label: str, published_s: float, stored: Result, received: Result) -> None:
    print(f"\n== {label}: {COUNTERS} counters, {EXPECTED} messages ({PUBLISHERS} publishers) ==")
    print(f"published in              {published_s:8.2f} s  ({EXPECTED / published_s:,.0f} msg/s)")
    print(f"ingest stored             {stored.messages:8d} msgs  {stored.rate:10,.0f} msg/s")
    print(f"bare subscriber received  {received.messages:8d} msgs  {received.rate:10,.0f} msg/s")
    print(f"ratio stored / bare       {stored.rate / received.rate:8.2f}")
    per_k = stored.cpu_s / max(stored.messages, 1) * 1000
    print(f"ingest CPU                {stored.cpu_s:8.2f} s   {per_k:.3f} CPU s / 1,000 msgs")
    bare_k = received.cpu_s / max(received.messages, 1) * 1000
    print(f"bare subscriber CPU       {received.cpu_s:8.2f} s   {bare_k:.3f} CPU s / 1,000 msgs")
    for line in stored.phases:
        print(line)


def _medians(label: str, runs: list[tuple[Result, Result]]) -> None:
    ratios = [stored.rate / received.rate for stored, received in runs]
    stored_rate = statistics.median(stored.rate for stored, _ in runs)
    bare_rate = statistics.median(received.rate for _, received in runs)
    cpu = statistics.median(s.cpu_s / max(s.messages, 1) * 1000 for s, _ in runs)
    print(f"\n== {label}, median of {len(runs)} runs ==")
    print(f"ingest stored {stored_rate:,.0f} msg/s, bare subscriber {bare_rate:,.0f} msg/s")
    print(f"ratio stored / bare: median {statistics.median(ratios):.2f}", end="")
    print(f" (runs: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"ingest CPU: median {cpu:.3f} CPU s / 1,000 msgs")


def writer_only(label: str, db_url: str) -> tuple[float, float]:
    """The same messages through the writer alone (decode, store, commit; no broker, no
    paho): (messages/s, CPU µs per message), in this process."""
    migrate(db_url)
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, mqtt_url="mqtt://127.0.0.1:1", demo=True)
    ids = [f"bench-{i:05d}" for i in range(COUNTERS)]
    sent = [m for i in range(PUBLISHERS) for m in _payloads(ids[i::PUBLISHERS])]
    items = [Incoming(t, p, q, n, r, 0, contract.utcnow()) for n, (t, p, q, r) in enumerate(sent)]
    batch = writer.BatchWriter(
        settings,
        make_session_factory(engine),
        Metrics(),
        queue.Queue(),
        threading.Event(),
        lambda _acked: None,
    )
    gc.freeze()  # as `guichet fleet ingest` and `serve` do once started
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for start in range(0, len(items), writer.BATCH_MAX_MESSAGES):
        batch._handle(items[start : start + writer.BATCH_MAX_MESSAGES])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    engine.dispose()
    rate, per_message = len(items) / wall, cpu / len(items) * 1e6
    print(f"{label}: writer alone {rate:8,.0f} msg/s  {per_message:6.0f} CPU µs / msg")
    return rate, per_message


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=1, help="runs per database (medians)")
    parser.add_argument("--phases", action="store_true", help="where the ingest's time goes")
    parser.add_argument(
        "--writer-only",
        action="store_true",
        help="the same messages through the ingest's writer alone (no broker)",
    )
    parser.add_argument(
        "--no-store",
        action="store_true",
        help="the ingest with a store that writes nothing: the ratio it cannot exceed here",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--sqlite-only", action="store_true")
    only.add_argument("--postgres-only", action="store_true")
    args = parser.parse_args()
    options = Options(phases=args.phases, no_store=args.no_store)
    backends = [] if args.postgres_only else [("SQLite", "sqlite")]
    if not args.sqlite_only:
        if postgres_available():
            backends.append(("PostgreSQL", "postgresql"))
        else:
            print("\nPostgreSQL not reachable: skipped")
    with tempfile.TemporaryDirectory(prefix="guichet-bench-") as tmp:
        workdir = Path(tmp)
        for label, backend in backends:
            runs: list[tuple[Result, Result]] = []
            alone: list[tuple[float, float]] = []
            for n in range(args.runs):
                (workdir / f"{backend}-{n}").mkdir()
                with fresh_database(backend, workdir / f"{backend}-{n}") as url:
                    if args.writer_only:
                        alone.append(writer_only(f"{label}-{n}", url))
                        continue
                    runs.append(
                        run(f"{label}-{n}" if args.runs > 1 else label, url, workdir, options)
                    )
            if alone:
                rate = statistics.median(r for r, _ in alone)
                cpu = statistics.median(c for _, c in alone)
                print(
                    f"== {label}, writer alone, median of {len(alone)}: {rate:,.0f} msg/s,", end=""
                )
                print(f" {cpu:.0f} CPU µs / msg")
            elif args.runs > 1:
                _medians(label, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
