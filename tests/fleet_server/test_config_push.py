"""Counters' retained configs through a real Mosquitto: the running app publishes a counter's
schedule and questionnaire when asked, retained, with a version that only increases, and
the appliance's runtime settings take each newer one. Revoked counters get nothing."""

from __future__ import annotations

import asyncio
import queue
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import time, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from appliance.fleet.settings import RuntimeSettings
from fleet_server.calls import admin as calls_admin
from fleet_server.models import Appointment, Device, ScheduleRule
from fleet_server.mqtt import config_push
from guichet import contract
from guichet.contract import Kind, utcnow
from guichet.schedule import PARIS, AccessMode
from tests.support.call_harness import wait_for
from tests.support.live_server import LiveApp, live_app, receive
from tests.support.mosquitto import Broker

DEVICE, REVOKED = "monts-de-chalus", "bandiat-tardoire"  # REVOKED sorts first
WAIT_S = 15.0
Received = tuple[str, bool, contract.DeviceConfig]  # topic, retained flag, config


@contextmanager
def subscriber(broker: Broker, topic_filter: str) -> Iterator[queue.Queue[Received]]:
    """A plain MQTT client reading configs the way a counter does."""
    inbox: queue.Queue[Received] = queue.Queue()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        config = contract.decode(Kind.CONFIG, msg.payload)
        assert isinstance(config, contract.DeviceConfig)
        inbox.put((msg.topic, bool(msg.retain), config))

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    assert client.connect("127.0.0.1", broker.port) == mqtt.MQTT_ERR_SUCCESS
    client.subscribe(topic_filter, qos=1)
    client.loop_start()
    try:
        yield inbox
    finally:
        client.disconnect()
        client.loop_stop()


async def next_config(inbox: queue.Queue[Received]) -> Received:
    return await asyncio.to_thread(inbox.get, True, WAIT_S)


@asynccontextmanager
async def running(broker: Broker, db_url: str) -> AsyncIterator[LiveApp]:
    async with live_app(
        db_url,
        ingest_enabled=True,
        mqtt_url=broker.url,
        mqtt_client_id=f"fleet-{uuid.uuid4().hex[:8]}",
        closed_phone="05 55 00 00 00",
    ) as live:
        assert await asyncio.to_thread(live.ctx.ingest.wait_connected, WAIT_S)  # type: ignore[union-attr]
        yield live


async def test_a_change_reaches_the_counter_retained_with_a_newer_version(
    broker: Broker, db_url: str
) -> None:
    async with running(broker, db_url) as live:
        # The start-up push (of no counter yet) is over: the configs below are the test's own.
        pusher = live.ctx.config_pusher
        assert pusher is not None
        await wait_for(lambda: pusher.rounds >= 1, "the start-up push")
        with live.sessions.begin() as session:
            session.add(Device(id=DEVICE, site="Monts de Châlus", name="Mairie"))
            session.add(
                Device(id=REVOKED, site="Bandiat Tardoire", name="CIAS", revoked_at=utcnow())
            )
        with live.sessions() as session:
            token = calls_admin.new_call_token(session, DEVICE)
        with subscriber(broker, contract.topic(DEVICE, Kind.CONFIG)) as inbox:
            async with live.counter_socket(token) as calls:
                assert (await receive(calls, "welcome"))["service"] is None  # nothing open
                config_push.request_push(live.ctx, [DEVICE])
                topic, _retained, first = await next_config(inbox)
                assert topic == contract.topic(DEVICE, Kind.CONFIG)
                assert first.schedule is not None
                assert first.schedule.openings == []
                assert first.schedule.appointments == []
                assert first.schedule.phone == "05 55 00 00 00"
                assert first.questionnaire is not None
                assert first.questionnaire.version == 1

                # The reception books an appointment now and the admin adds a Caf slot tomorrow;
                # the request comes from a worker thread, like a synchronous route's.
                now = utcnow()
                tomorrow = (now + timedelta(days=1)).astimezone(PARIS).weekday()
                with live.sessions.begin() as session:
                    session.add(
                        ScheduleRule(
                            service="caf",
                            mode="slot",
                            weekday=tomorrow,
                            start_time=time(9),
                            end_time=time(12),
                        )
                    )
                    session.add(
                        Appointment(
                            service="carsat",
                            device_id=DEVICE,
                            start=now - timedelta(minutes=1),
                            end=now + timedelta(minutes=29),
                            citizen_name="J. M.",
                            created_at=now,
                            created_by="accueil",
                        )
                    )
                await asyncio.to_thread(config_push.request_push, live.ctx, [DEVICE])
                _topic, _retained, second = await next_config(inbox)
                # The connected counter's button now calls Carsat: it is told at once (after
                # the welcome that followed the first push, which may come first).
                welcome = await receive(calls, "welcome")
                if welcome["service"] is None:
                    welcome = await receive(calls, "welcome")
                assert (welcome["service"], welcome["service_label"]) == ("carsat", "Carsat")
        assert second.version > first.version
        assert second.schedule is not None
        slots = [(o.service, o.mode) for o in second.schedule.openings]
        assert ("caf", AccessMode.SLOT) in slots
        assert [a.service for a in second.schedule.appointments] == ["carsat"]
        assert "J. M." not in contract.encode(second).decode()  # nothing personal leaves

        # A counter connecting later gets the latest config at once (retained) and takes
        # only newer versions.
        with subscriber(broker, contract.topic(DEVICE, Kind.CONFIG)) as late:
            _topic, retained, latest = await next_config(late)
        assert retained
        assert latest.version == second.version
        runtime = RuntimeSettings(30)
        assert await runtime.apply(first)
        assert await runtime.apply(latest)
        assert not await runtime.apply(first)
        assert runtime.device_config is not None
        assert runtime.device_config.schedule == second.schedule

        # Pushing every counter skips the revoked one. Counters go out in id order and
        # MQTT keeps one publisher's order: had the revoked one been sent, it would arrive
        # before this counter's new config.
        with subscriber(broker, contract.subscription_all(Kind.CONFIG)) as everything:
            assert (await next_config(everything))[2] == latest  # the only retained one
            config_push.request_push(live.ctx)
            topic, _retained, third = await next_config(everything)
        assert topic == contract.topic(DEVICE, Kind.CONFIG)
        assert third.version > latest.version
        rejected = live.ctx.metrics.registry.get_sample_value(
            "guichet_messages_rejected_total", {"reason": "too-large"}
        )
        assert not rejected  # the server's own configs come back to its ingest, skipped


def test_request_push_without_a_running_pusher_only_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Ctx:
        config_pusher = None

    caplog.set_level("INFO", logger="fleet_server.mqtt.config_push")
    config_push.request_push(Ctx(), ["monts-de-chalus"])  # type: ignore[arg-type]
    assert "not running" in caplog.text
