"""Build the call agent from the configuration (composition root part, called by
``appliance.app``): the call's timings, the documents' limits, the hardware it drives.

aiortc and PyAV are imported here only when calls are configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.config import ApplianceConfig
from appliance.fleet.settings import RuntimeSettings
from appliance.fleet.tls import https_context
from appliance.wiring import Hardware
from guichet import contract

if TYPE_CHECKING:
    from appliance.call.adaptation import VideoLimits
    from appliance.call.agent import CallAgent
    from appliance.call.documents import DocumentSettings

EventData = dict[str, contract.Scalar]


def build_call_agent(
    config: ApplianceConfig,
    hardware: Hardware,
    settings: RuntimeSettings,
    *,
    emit: Callable[[contract.EventKind, EventData | None], None],
    submit_survey: Callable[[contract.SurveyAnswer], None],
) -> CallAgent | None:
    """The call agent ``[call]`` asks for, on this hardware; None when calls are off."""
    call = config.call
    if call.server_url is None or call.token is None or hardware.media is None:
        return None
    # aiortc and PyAV are loaded only by a counter that makes calls.
    from appliance.call.agent import CallAgent
    from appliance.call.loopback import enable_if_requested
    from appliance.call.machine import CallTimings

    enable_if_requested(call.ice_loopback)
    return CallAgent(
        documents=document_settings(config, hardware),
        server_url=call.server_url,
        token=call.token,
        button=hardware.button,
        light=hardware.light,
        screen=hardware.screen,
        media=hardware.media,
        adaptation=video_limits(config) if call.adaptation else None,
        emit=emit,
        timings=CallTimings(
            long_press_s=call.long_press_s,
            restore_s=call.restore_timeout_s,
            request_s=call.request_timeout_s,
            ring_grace_s=call.ring_grace_s,
            ended_screen_s=call.ended_screen_s,
            out_of_service_after_s=call.out_of_service_after_s,
            choice_timeout_s=config.accessibility.choice_timeout_s,
            question_timeout_s=config.accessibility.question_timeout_s,
            more_time_warning_s=config.accessibility.more_time_warning_s,
        ),
        reconnect_min_s=call.reconnect_min_s,
        reconnect_max_s=call.reconnect_max_s,
        settings=settings,
        submit_survey=submit_survey,
        questionnaire_enabled=config.questionnaire.enabled,
        choice_buttons=hardware.choice_buttons,
        speaker=hardware.speaker,
        keyboard=hardware.keyboard,
        spoken=config.questionnaire.spoken,
        speech=config.accessibility.speech,
        # wss:// to the fleet server: the Pays's own CA when it has one (as for mqtts://)
        ssl_context=https_context(config.fleet.tls) if call.server_url.startswith("wss:") else None,
    )


def video_limits(config: ApplianceConfig) -> VideoLimits:
    """The top of the camera's ladder: the size and frame rate ``[hardware]`` gives it."""
    from appliance.call.adaptation import VideoLimits

    hw = config.hardware
    return VideoLimits(size=(hw.camera_size[0], hw.camera_size[1]), fps=hw.camera_fps)


def document_settings(config: ApplianceConfig, hardware: Hardware) -> DocumentSettings | None:
    """Scanning and printing during calls, when ``[documents]`` enables them."""
    section = config.documents
    if not section.enabled:
        return None
    from appliance.call.documents import DocumentSettings
    from appliance.documents.pdf import Limits
    from appliance.documents.storage import default_root

    return DocumentSettings(
        scanner=hardware.scanner,
        printer=hardware.printer,
        limits=Limits(max_bytes=section.max_bytes, max_pages=section.max_pages),
        private_dir=section.private_dir or default_root(),
        job_timeout_s=section.job_timeout_s,
    )
