"""The questionnaire after a real call: headless Chromium answers as a Caf agent and hangs up,
the citizen answers on the counter's screen by pressing the button (gpiozero mock pin), the
answers travel through the counter's outbox and the real Mosquitto to the fleet server and
appear in the statistics — also when the counter was offline while the citizen answered.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import func, select

from appliance.call.machine import Phase
from appliance.fleet.outbox import OUTBOX_FILE
from appliance.hw.ports import ScreenState
from fleet_server.models import CallRecord, SurveyRecord
from fleet_server.stats.uptake import monthly_stats
from guichet import contract
from tests.support.call_harness import CallRig, call_rig, wait_for
from tests.support.mosquitto import Broker, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SITE = "Monts de Châlus"
ARRIVAL_S = 30.0  # the counter reconnects within a second; the ingest never left


async def call_then_questionnaire(rig: CallRig) -> None:
    """A call answered by the agent, who then hangs up: the questionnaire comes up."""
    rig.press()
    await wait_for(lambda: rig.phase is Phase.WAITING, "call queued")
    await rig.answer()
    await wait_for(lambda: rig.phase is Phase.IN_CALL, "call connected")
    await rig.page.get_by_role("button", name="Raccrocher").click()
    await wait_for(lambda: rig.phase is Phase.SURVEY, "questionnaire on screen")
    assert rig.screen.state is ScreenState.SURVEY
    assert rig.screen.info.get("question") == "Votre demande a-t-elle été traitée ?"


async def short_press_to(rig: CallRig, selected: int) -> None:
    """Short presses until option ``selected`` is highlighted (one press at a time)."""
    while rig.screen.info.get("selected") != selected:
        await press_once(rig)


async def press_once(rig: CallRig) -> None:
    shown = len(rig.screen.history)
    rig.press()
    await wait_for(lambda: len(rig.screen.history) > shown, "highlight moved")


async def choose(rig: CallRig, selected: int) -> None:
    step = rig.screen.info.get("step")
    await short_press_to(rig, selected)
    await rig.long_press()
    await wait_for(
        lambda: rig.screen.info.get("step") != step or rig.phase is not Phase.SURVEY,
        "next question",
    )


def surveys(rig: CallRig) -> list[SurveyRecord]:
    with rig.live.sessions() as session:
        return list(session.scalars(select(SurveyRecord).order_by(SurveyRecord.received_at)))


def calls(rig: CallRig) -> int:
    with rig.live.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(CallRecord)) or 0)


def queued_surveys(rig: CallRig) -> list[tuple[str, bytes]]:
    """The survey messages waiting in the counter's outbox, read from its file on disk."""
    path = rig.appliance.config.device.data_dir / OUTBOX_FILE
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT topic, payload FROM outbox ORDER BY seq").fetchall()
    return [(topic, bytes(payload)) for topic, payload in rows if topic.endswith("/survey")]


async def test_answers_on_the_counter_reach_the_statistics(tmp_path: Path) -> None:
    async with call_rig(tmp_path, questionnaire=True) as rig:
        await call_then_questionnaire(rig)
        await choose(rig, 0)  # "Oui"
        assert rig.screen.info.get("faces") is True
        await choose(rig, 4)  # "Très content"
        await choose(rig, 1)  # "Oui, moins de 10 km": the last answer
        assert rig.phase is Phase.ENDED  # "Merci", no new call
        assert rig.screen.state is ScreenState.ENDED

        await wait_for(lambda: len(surveys(rig)) == 1, "answers stored", ARRIVAL_S)
        [stored] = surveys(rig)
        assert stored.answers == {"dealt_with": "yes", "satisfaction": "5", "travel": "lt10"}
        assert (stored.service, stored.site, stored.questionnaire_version) == ("caf", SITE, 1)
        assert calls(rig) == 1  # the presses on the questionnaire started no call

        with rig.live.sessions() as session:
            rows = monthly_stats(session, datetime.now(UTC).date(), site=SITE)
        [caf] = [row for row in rows if row.service == "caf"]
        assert (caf.requested, caf.answered, caf.surveys) == (1, 1, 1)
        assert caf.satisfaction_counts == (0, 0, 0, 0, 1)
        assert (caf.dealt_yes, caf.travel_answers, caf.travelled) == (1, 1, 1)
        await rig.wait_idle()


class CounterLine:
    """A TCP relay between the counter and the broker that the test cuts: the counter goes
    offline while the fleet server's ingest stays connected, as when a town hall's network
    drops."""

    def __init__(self) -> None:
        self.port = free_port()
        self.target = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def url_for(self, broker: Broker) -> str:
        self.target = broker.port
        return f"mqtt://127.0.0.1:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass  # the other side is gone: the line is cut
    finally:
        writer.close()


async def test_answers_given_while_the_counter_is_offline_arrive_later_exactly_once(
    tmp_path: Path,
) -> None:
    line = CounterLine()
    await line.open()
    async with call_rig(tmp_path, questionnaire=True, counter_mqtt_url=line.url_for) as rig:
        link = rig.appliance.link
        await wait_for(lambda: link.connected, "counter's fleet link up")
        await call_then_questionnaire(rig)
        await line.cut()
        await wait_for(lambda: not link.connected, "counter's fleet link down")
        await choose(rig, 2)  # "Non"
        await choose(rig, 0)  # "Très mécontent"
        await choose(rig, 0)  # "Non" (would not have travelled)
        await wait_for(lambda: len(queued_surveys(rig)) == 1, "answers in the outbox")
        [(topic, payload)] = queued_surveys(rig)
        assert surveys(rig) == []

        await line.open()
        await wait_for(lambda: len(surveys(rig)) == 1, "answers delivered", ARRIVAL_S)
        await wait_for(lambda: queued_surveys(rig) == [], "outbox drained")
        [stored] = surveys(rig)
        assert stored.answers == {"dealt_with": "no", "satisfaction": "1", "travel": "no"}

        # A redelivery (a PUBACK lost on the way) is stored once: publish the same message
        # again, then a new one behind it on the same topic; once the new one is stored,
        # the duplicate has been through the ingest too.
        original = contract.decode(contract.Kind.SURVEY, payload)
        assert isinstance(original, contract.SurveyAnswer)
        marker = original.model_copy(update={"id": uuid.uuid4()})
        broker = rig.broker
        assert broker is not None
        async with aiomqtt.Client("127.0.0.1", port=broker.port) as client:
            await client.publish(topic, payload, qos=1)
            await client.publish(topic, contract.encode(marker), qos=1)
        await wait_for(lambda: len(surveys(rig)) == 2, "marker stored", ARRIVAL_S)
        assert sorted(str(s.id) for s in surveys(rig)) == sorted([str(original.id), str(marker.id)])
    await line.cut()
