"""Spoken prompts: the real espeak-ng writing French speech to a WAV file, one utterance at a
time (the previous one cut), a missing binary as an absent speaker; and, at the machine's
level, which texts the questionnaire asks to be said."""

from __future__ import annotations

import array
import asyncio
import logging
import math
import os
import wave
from pathlib import Path

import pytest

from appliance.call.agent import CallAgent
from appliance.call.machine import CallMachine, CallTimings, Phase
from appliance.call.phases import QUESTION
from appliance.config import parse_config
from appliance.hw.ports import Speaker
from appliance.hw.ports.controls import SimulatedButton, SimulatedLight
from appliance.hw.ports.speaker import SilentSpeaker
from appliance.hw.speech import EspeakSpeaker
from appliance.wiring import build_hardware
from guichet.questionnaire import default_questionnaire
from tests.appliance.call_support import TestMedia
from tests.appliance.test_call_machine import CALL_ID, WELCOME, Clock, Effects
from tests.appliance.test_call_schedule import WallClock, answered_call, at, schedule

SENTENCE = "Votre demande a-t-elle été traitée ?"
DONE_TIMEOUT_S = 20.0


def read_wav(path: Path) -> tuple[wave._wave_params, array.array[int]]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        samples = array.array("h", wav.readframes(params.nframes))
    return params, samples


async def test_espeak_ng_says_a_french_sentence_into_a_wav_file(tmp_path: Path) -> None:
    out = tmp_path / "question.wav"
    speaker = EspeakSpeaker(output=out)
    assert isinstance(speaker, Speaker)
    assert speaker.present
    speaker.say(SENTENCE)
    await asyncio.wait_for(speaker.wait_done(), DONE_TIMEOUT_S)
    assert speaker.spoken == 1
    params, samples = read_wav(out)
    assert (params.nchannels, params.sampwidth) == (1, 2)  # mono, 16 bits
    seconds = params.nframes / params.framerate
    assert 1.0 < seconds < 6.0  # a short sentence, said at 150 words a minute
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    assert rms > 500  # speech, not silence
    speaker.close()


async def test_a_longer_text_takes_longer(tmp_path: Path) -> None:
    """The text really goes in: two sentences give more audio than one."""
    durations = []
    for text in (SENTENCE, f"{SENTENCE} Êtes-vous satisfait de ce rendez-vous ?"):
        out = tmp_path / f"{len(text)}.wav"
        speaker = EspeakSpeaker(output=out)
        speaker.say(text)
        await asyncio.wait_for(speaker.wait_done(), DONE_TIMEOUT_S)
        params, _ = read_wav(out)
        durations.append(params.nframes / params.framerate)
    assert durations[1] > durations[0] + 1.0


def slow_espeak(tmp_path: Path) -> Path:
    """A stand-in for espeak-ng that never finishes on its own: it records what it was given
    (file named by its pid) and sleeps, like a long sentence played to a loudspeaker."""
    script = tmp_path / "slow-espeak"
    script.write_text(f'#!/bin/sh\ncat > "{tmp_path}/said-$$"\nexec sleep 60\n')
    script.chmod(0o755)
    return script


async def said(tmp_path: Path, count: int) -> list[tuple[int, str]]:
    """Wait until ``count`` utterances have begun; (pid, text) in the order they began."""
    async with asyncio.timeout(DONE_TIMEOUT_S):
        while True:
            files = sorted(tmp_path.glob("said-*"), key=lambda p: p.stat().st_mtime_ns)
            if len(files) >= count and all(f.stat().st_size for f in files):
                return [(int(f.name[5:]), f.read_text()) for f in files]
            await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_new_utterance_cuts_the_previous_one(tmp_path: Path) -> None:
    speaker = EspeakSpeaker(binary=str(slow_espeak(tmp_path)))
    speaker.say("Première question")
    [(first, text)] = await said(tmp_path, 1)
    assert text == "Première question"
    speaker.say("Oui")
    speaker.say("En partie")  # before "Oui" even began: it is dropped
    (_, _), (second, text) = await said(tmp_path, 2)
    assert text == "En partie"
    assert not alive(first)  # killed and reaped before the next one started
    assert speaker.cut == 1
    speaker.stop()
    await asyncio.wait_for(speaker.wait_done(), DONE_TIMEOUT_S)
    assert not alive(second)
    assert (speaker.cut, speaker.spoken) == (2, 0)
    assert len(list(tmp_path.glob("said-*"))) == 2
    speaker.close()


async def test_a_missing_binary_is_an_absent_speaker_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="appliance.hw.speech"):
        speaker = EspeakSpeaker(binary="espeak-ng-not-installed")
        speaker.say("Bonjour")
        speaker.say("Au revoir")
        await speaker.wait_done()
    assert not speaker.present
    assert [r.getMessage() for r in caplog.records] == [
        "espeak-ng-not-installed not found: nothing is read aloud"
    ]
    speaker.close()


async def test_the_configuration_picks_the_speaker(tmp_path: Path) -> None:
    base = f'[device]\nid = "guichet-test"\nsite = "Test"\ndata_dir = "{tmp_path}"\n'
    loop = asyncio.get_running_loop()
    for section, kind in (("", SilentSpeaker), ('speech = "espeak-ng"\n', EspeakSpeaker)):
        config = parse_config(f'{base}[hardware]\nsystem = "simulated"\n{section}')
        hardware = build_hardware(config, loop)
        try:
            assert isinstance(hardware.speaker, kind)
        finally:
            hardware.close()


# --- what the questionnaire says -------------------------------------------------------------


def spoken_machine(fx: Effects, choice_buttons: int = 0) -> CallMachine:
    machine = CallMachine(
        fx,
        CallTimings(long_press_s=2.0),
        clock=Clock(),
        new_id=lambda: CALL_ID,
        wall_clock=WallClock(at(1, 9, 30)),
        choice_buttons=choice_buttons,
    )
    machine.link_connected(WELCOME)
    machine.configure(schedule(), default_questionnaire().model_copy(update={"spoken": True}))
    return machine


def test_each_question_then_each_highlighted_option_is_said() -> None:
    fx = Effects()
    machine = spoken_machine(fx)
    answered_call(machine)
    assert fx.spoken == ["Votre demande a-t-elle été traitée ? Oui"]
    machine.released(0.2)
    machine.released(0.2)
    assert fx.spoken[1:] == ["En partie", "Non"]
    machine.released(2.5)  # "Non"; the faces next
    assert fx.spoken[-1] == "Êtes-vous satisfait de cet échange ? Très mécontent"
    machine.released(0.2)
    assert fx.spoken[-1] == "Mécontent"
    machine.timer_fired(QUESTION)  # abandoned: thanked all the same
    assert fx.spoken[-1] == "Merci."
    assert machine.phase is Phase.ENDED
    assert len(fx.spoken) == 6


def test_with_choice_buttons_the_numbered_options_are_read_out() -> None:
    fx = Effects()
    machine = spoken_machine(fx, choice_buttons=2)
    answered_call(machine)
    assert fx.spoken == ["Votre demande a-t-elle été traitée ? 1 : Oui. 2 : En partie."]
    machine.choice_pressed(1)
    assert fx.spoken[-1].startswith("Êtes-vous satisfait de cet échange ? 1 : Très mécontent.")


def test_nothing_is_said_when_the_questionnaire_is_not_spoken() -> None:
    fx = Effects()
    machine = spoken_machine(fx)
    machine.configure(schedule(), default_questionnaire())
    answered_call(machine)
    machine.released(0.2)
    machine.released(2.5)
    machine.timer_fired(QUESTION)
    assert fx.spoken == []


@pytest.mark.parametrize(("override", "expected"), [(None, False), (True, True)])
async def test_the_counters_setting_overrides_the_questionnaires(
    override: bool | None, expected: bool
) -> None:
    speaker = SilentSpeaker()
    agent = CallAgent(
        server_url="ws://127.0.0.1:9/ws/counter",
        token="counter-token-0123456789",
        button=SimulatedButton(loop=asyncio.get_running_loop()),
        light=SimulatedLight(),
        screen=None,
        media=TestMedia(),
        emit=lambda kind, data: None,
        submit_survey=lambda answer: None,
        speaker=speaker,
        spoken=override,
    )
    agent._configure()  # as for each new retained config: the default questionnaire here
    questionnaire = agent.machine.questionnaire
    assert questionnaire is not None
    assert questionnaire.spoken is expected
    agent.speak("Bonjour")
    agent.speak(None)
    assert speaker.said == ["Bonjour"]


@pytest.mark.parametrize(
    ("own", "sent", "expected"),
    [(False, None, False), (True, None, True), (False, True, True), (True, False, False)],
)
async def test_the_fleets_choice_overrides_the_counters_speech(
    own: bool, sent: bool | None, expected: bool
) -> None:
    """Issue 15: the counter page's choice (in the retained config) beats ``[accessibility]
    speech``; None leaves the counter's own. The questionnaire follows."""
    from appliance.fleet.settings import RuntimeSettings
    from guichet.contract import DeviceConfig, utcnow

    settings = RuntimeSettings(30)
    settings.device_config = DeviceConfig(version=1, issued_at=utcnow(), speech=sent)
    agent = CallAgent(
        server_url="ws://127.0.0.1:9/ws/counter",
        token="counter-token-0123456789",
        button=SimulatedButton(loop=asyncio.get_running_loop()),
        light=SimulatedLight(),
        screen=None,
        media=TestMedia(),
        emit=lambda kind, data: None,
        settings=settings,
        submit_survey=lambda answer: None,
        speaker=SilentSpeaker(),
        speech=own,
    )
    assert agent.machine.speech is expected
    assert agent.machine.questionnaire is not None
    assert agent.machine.questionnaire.spoken is expected
