"""The ``[call]`` section, the media choices of ``[hardware]``, and the loopback ICE helper."""

from __future__ import annotations

import aioice.ice
import pytest

from appliance.call import loopback
from appliance.config import parse_config
from appliance.errors import ConfigError
from appliance.hw.audio.pyav import NullAudioSink, ToneSource
from appliance.hw.camera.devices import ConfiguredMedia
from appliance.hw.camera.pattern import H264TestPatternSource, TestPatternSource
from appliance.hw.camera.v4l2 import V4l2Source
from appliance.wiring import build_media

BASE = '[device]\nid = "c1"\nsite = "Mairie"\n'
CALL = '[call]\nserver_url = "wss://fleet.example/ws/counter"\ntoken = "0123456789abcdef"\n'


def test_existing_configs_have_no_calls() -> None:
    config = parse_config(BASE)
    assert config.call.server_url is None
    assert config.hardware.camera == "simulated"
    assert build_media(config) is None


def test_call_section_defaults() -> None:
    config = parse_config(BASE + CALL)
    assert config.call.long_press_s == 2.0
    assert config.call.restore_timeout_s == 30.0
    assert not config.call.ice_loopback
    media = build_media(config)
    assert isinstance(media, ConfiguredMedia)
    assert isinstance(media.camera(), TestPatternSource)
    assert isinstance(media.microphone(), ToneSource)
    assert isinstance(media.speaker(), NullAudioSink)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            '[call]\nserver_url = "http://x/ws/counter"\ntoken = "0123456789abcdef"\n',
            "call.server_url",
        ),
        ('[call]\nserver_url = "wss://x/ws/counter"\n', "call"),  # no token
        ("[call]\nlong_press = 3\n", "call.long_press"),
        ('[hardware]\ncamera = "webcam"\n', "hardware.camera"),
        ('[hardware]\naudio_in = "jack"\n', "hardware.audio_in"),
    ],
)
def test_bad_call_config_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        parse_config(BASE + text)


def test_camera_choices() -> None:
    hw = '[hardware]\ncamera = "test_pattern"\ncamera_encoding = "h264"\n'
    media = build_media(parse_config(BASE + hw + CALL))
    assert isinstance(media, ConfiguredMedia)
    assert isinstance(media.camera(), H264TestPatternSource)
    hw = '[hardware]\ncamera = "v4l2"\ncamera_device = "/dev/video2"\ncamera_encoding = "h264"\n'
    media = build_media(parse_config(BASE + hw + CALL))
    assert isinstance(media, ConfiguredMedia)
    camera = media.camera()
    assert isinstance(camera, V4l2Source)
    assert camera.encoded


def test_loopback_candidates_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loopback.ENV_FLAG, raising=False)
    assert not loopback.enable_if_requested(False)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)
    monkeypatch.setenv(loopback.ENV_FLAG, "1")
    try:
        assert loopback.enable_if_requested(False)
        assert "127.0.0.1" in aioice.ice.get_host_addresses(True, False)
    finally:
        loopback.disable_loopback_candidates()
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)


def test_enrolment_brings_the_call_token() -> None:
    enrolling = (
        '[fleet]\nenrolment_url = "https://flotte.exemple.fr"\nenrolment_token = "jeton-123456"\n'
        '[call]\nserver_url = "wss://flotte.exemple.fr/ws/counter"\n'
    )
    config = parse_config(BASE + enrolling)
    assert config.call.token is None  # enrolment (appliance/enrol.py) fills it in


@pytest.mark.parametrize(
    ("section", "url"),
    [
        ("[call]\nserver_url", "ws://fleet.example.fr/ws/counter"),
        ("[call]\nserver_url", "ws://192.168.1.10/ws/counter"),
        ("[fleet]\nenrolment_url", "http://fleet.example.fr"),
        ("[fleet]\nenrolment_url", "http://10.0.0.2:8000"),
    ],
)
def test_a_token_is_never_sent_in_clear_beyond_loopback(section: str, url: str) -> None:
    """Issue 12: someone on the town hall's LAN would read the call or enrolment token."""
    text = f'[device]\nid = "guichet-test"\nsite = "x"\n{section} = "{url}"\n' + (
        'token = "0123456789abcdef"\n' if "call" in section else ""
    )
    with pytest.raises(ConfigError, match="in clear"):
        parse_config(text)


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:8000/ws/counter", "ws://localhost/ws/counter", "ws://[::1]/ws"]
)
def test_plain_websocket_to_loopback_is_allowed(url: str) -> None:
    text = f'[device]\nid = "guichet-test"\nsite = "x"\n[call]\nserver_url = "{url}"\n'
    assert parse_config(text + 'token = "0123456789abcdef"\n').call.server_url == url
