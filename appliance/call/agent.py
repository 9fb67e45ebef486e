"""The call agent: wires the button, the signalling link, the peer and the state machine.

``CallAgent.run()`` is a supervised component of the appliance. It carries out the
machine's effects (messages, light, screen, fleet events, timers, media release) and
feeds it the inputs: button callbacks (already on the loop), server messages, the media
path's state, and timers (``loop.call_later``). Every input runs with ``call_id`` set in
the logging context, and so do the tasks it starts.

It also follows the fleet's retained configuration (``RuntimeSettings``): each new one gives
the machine the counter's schedule and questionnaire (the built-in default questionnaire
when the server sends none; none at all when ``[questionnaire] enabled = false``). The
questionnaire's answers go to ``submit_survey`` (the fleet link's outbox), without call id.
Extra choice buttons (``choice_buttons``, when wired) are inputs of the machine like the call
button; the questionnaire is read aloud by ``speaker`` when the fleet's questionnaire says
``spoken`` (or the counter's ``[questionnaire] spoken`` overrides it). With ``speech``
(the counter's ``[accessibility] speech``, or the fleet's choice for this counter in its
``config``) every screen is said aloud, the questionnaire with them unless
``[questionnaire] spoken = false``; the speaker never talks while the call's media are up.

The browser's data channels are the call's documents (``documents``) and its text
(``texte``): the agent's typed lines shown large over its video (``CaptionSession``), and,
when a USB keyboard is plugged in (``keyboard``), the citizen's typed answers back. The keys
go to the call's text session while the call is up, and nowhere otherwise: outside a call
the keyboard does nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, TypeVar

from appliance.call.adaptation import VideoLimits
from appliance.call.machine import CallMachine, CallTimings, Phase
from appliance.call.peer import CallPeer, MediaNegotiationError
from appliance.call.phases import ACTIVE
from appliance.call.signalling_client import SignallingClient
from appliance.call.summary import summary
from appliance.errors import ApplianceError
from appliance.hw.ports import (
    Button,
    Keyboard,
    KeyEvent,
    LightPattern,
    MediaDevices,
    Screen,
    ScreenInfo,
    ScreenState,
    Speaker,
    StatusLight,
)
from guichet import signalling as sig
from guichet.contract import AudioRoute, EventKind, Scalar, SurveyAnswer
from guichet.logs import call_id_var
from guichet.questionnaire import default_questionnaire

if TYPE_CHECKING:
    from aiortc import RTCDataChannel

    from appliance.call.caption import CaptionSession
    from appliance.call.citizen_text import Typing
    from appliance.call.documents import DocumentSession, DocumentSettings
    from appliance.call.line_test import LineTest
    from appliance.fleet.settings import RuntimeSettings

logger = logging.getLogger(__name__)

# A citizen is at the counter: a restart, a reboot or a self-test would cut them off.
OCCUPIED = ACTIVE | {Phase.SURVEY}

Emit = Callable[[EventKind, dict[str, Scalar]], None]
# Stores the answers durably before returning (the outbox, fsynced): the screen moves on
# only once they are on disk (issue 12, finding 14).
SubmitSurvey = Callable[[SurveyAnswer], None]
T = TypeVar("T")
ANSWERING = frozenset({Phase.REQUESTING, Phase.WAITING, Phase.CONNECTING, Phase.IN_CALL})


class CallAgent:
    def __init__(
        self,
        *,
        server_url: str,
        token: str,
        button: Button,
        light: StatusLight,
        screen: Screen | None,
        media: MediaDevices,
        emit: Emit,
        adaptation: VideoLimits | None = None,
        timings: CallTimings | None = None,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        documents: DocumentSettings | None = None,
        settings: RuntimeSettings | None = None,
        submit_survey: SubmitSurvey | None = None,
        questionnaire_enabled: bool = True,
        choice_buttons: Sequence[Button] = (),
        speaker: Speaker | None = None,
        spoken: bool | None = None,
        speech: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        keyboard: Keyboard | None = None,
    ) -> None:
        self._button = button
        self._keyboard = keyboard
        self._choice_buttons = list(choice_buttons)
        self._speaker = speaker
        self._spoken = spoken  # None: as the questionnaire says
        self._speech = speech and speaker is not None
        self._settings = settings
        self._submit_survey = submit_survey
        self._questionnaire_enabled = questionnaire_enabled and submit_survey is not None
        self._document_settings = documents
        self._documents: DocumentSession | None = None
        self._caption: CaptionSession | None = None
        self._caption_lines: list[str] = []  # on screen in the call; never logged
        self._typing: Typing | None = None  # the citizen's input line on screen; never logged
        self._document_text: str | None = None  # the document hint on screen in the call
        self._light = light
        self._screen = screen
        self._media = media
        self._adaptation = adaptation
        self._emit = emit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._peer: CallPeer | None = None
        self._ice_servers: list[sig.IceServer] = []  # welcome's (STUN; no credentials)
        # The answered call's own servers, TURN credentials included (they expire).
        self._call_ice_servers: tuple[uuid.UUID, list[sig.IceServer]] | None = None
        self.line_test: LineTest | None = None  # remote support's test call, while under way
        self.released = 0  # calls whose media was released (camera, microphone, speaker)
        self.media_released = asyncio.Event()  # set after each release (tests, self-test)
        self.client = SignallingClient(
            server_url,
            token,
            on_message=self._on_message,
            on_lost=lambda: self._input(self.machine.link_lost),
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
            ssl_context=ssl_context,
        )
        self.machine = CallMachine(
            self,
            timings or CallTimings(),
            clock=lambda: asyncio.get_running_loop().time(),
            choice_buttons=len(self._choice_buttons),
            speech=self._speech,
        )
        self._configure()

    @property
    def peer(self) -> CallPeer | None:
        return self._peer

    @property
    def media(self) -> MediaDevices:
        return self._media

    @property
    def adaptation(self) -> VideoLimits | None:
        return self._adaptation

    @property
    def welcome_ice_servers(self) -> list[sig.IceServer]:
        return list(self._ice_servers)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._document_settings is not None:  # a crash mid-call may have left some
            from appliance.documents.storage import wipe_all

            await asyncio.to_thread(wipe_all, self._document_settings.private_dir)
        self._button.when_pressed(lambda: self._input(self.machine.pressed))
        self._button.when_released(lambda held_s: self._input(self.machine.released, held_s))
        for option, choice in enumerate(self._choice_buttons):
            choice.when_pressed(self._choice_callback(option))
        if self._keyboard is not None:
            self._keyboard.when_key(self._key)
        following = asyncio.create_task(self._follow_config(), name="call:config")
        try:
            await self.client.run()
        finally:
            following.cancel()
            await asyncio.wait([following])
            if self._speaker is not None:
                self._speaker.stop()
            for handle in self._timers.values():
                handle.cancel()
            self._timers.clear()
            peer, self._peer = self._peer, None
            if peer is not None:
                await peer.close()
            documents, self._documents = self._documents, None
            if documents is not None:
                await documents.close()
            self._close_caption()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks)

    # --- inputs --------------------------------------------------------------------------

    def _configure(self) -> None:
        """Give the machine the schedule and questionnaire of the current configuration."""
        config = self._settings.device_config if self._settings is not None else None
        schedule = config.schedule if config is not None else None
        # Every screen aloud: the counter page's choice, else this counter's own setting.
        sent_speech = config.speech if config is not None else None
        speech = self._speaker is not None and (
            sent_speech if sent_speech is not None else self._speech
        )
        questionnaire = None
        if self._questionnaire_enabled:
            sent = config.questionnaire if config is not None else None
            questionnaire = sent or default_questionnaire()
            spoken = self._spoken if self._spoken is not None else (speech or None)
            if spoken is not None:
                questionnaire = questionnaire.model_copy(update={"spoken": spoken})
        self._input(self.machine.configure, schedule, questionnaire, speech)

    async def _follow_config(self) -> None:
        settings = self._settings
        if settings is None:
            return
        seen = settings.generation
        while True:
            seen = await settings.wait_changed(seen)
            self._configure()

    def _input(self, handler: Callable[..., T], *args: object) -> T:
        """Run one machine input with the current call's id in the logging context."""
        call_id = self.machine.call_id
        token = call_id_var.set(str(call_id) if call_id else None)
        try:
            return handler(*args)
        finally:
            call_id_var.reset(token)

    def _choice_callback(self, option: int) -> Callable[[], None]:
        return lambda: self._input(self.machine.choice_pressed, option)

    def _on_message(self, message: sig.ServerToCounter) -> None:
        machine = self.machine
        test = self.line_test
        if test is not None and getattr(message, "call_id", None) == test.call_id:
            test.received(message)  # the test call's: the machine never hears of it
        elif isinstance(message, sig.TestCallResult):
            logger.info("result of a test call that is not under way ignored")
        elif isinstance(message, sig.Welcome):
            self._ice_servers = list(message.ice_servers)
            self._input(machine.link_connected, message)
        elif isinstance(message, sig.CallQueued):
            self._input(machine.queued, message)
        elif isinstance(message, sig.CallAnswered):
            self._call_ice_servers = (message.call_id, list(message.ice_servers))
            self._input(machine.answered, message)
            if machine.call_id == message.call_id and machine.phase is Phase.CONNECTING:
                # The agent's browser now makes its offer: get ready meanwhile.
                self._start(self._call_peer(message.call_id).prepare())
        elif isinstance(message, sig.CallEnded):
            self._input(machine.ended_by_server, message)
        elif isinstance(message, sig.Error):
            logger.warning("server error %s: %s", message.code, message.message)
            self._input(machine.refused, message)
        elif isinstance(message, sig.Candidate):
            self._candidate(message)
        elif message.description.type == "offer":
            if message.call_id == machine.call_id and machine.phase in ANSWERING:
                self._start(self._answer(message.call_id, message.description.sdp))
            else:
                logger.info("offer for a call that is not ours ignored")

    def _candidate(self, message: sig.Candidate) -> None:
        """The browser's trickled candidate: to this call's peer, after the offer before it
        (both are tasks taking the peer's lock in the order they came)."""
        if message.call_id == self.machine.call_id and self.machine.phase in ANSWERING:
            peer = self._call_peer(message.call_id)
            self._start(peer.add_candidate(message.ufrag, message.candidate))
        else:
            logger.info("candidate for a call that is not ours ignored")

    def _call_peer(self, call_id: uuid.UUID) -> CallPeer:
        """This call's peer, made at the first need (the agent's answer, or an offer)."""
        peer = self._peer
        if peer is None:
            peer = self._peer = CallPeer(
                self._media,
                screen=self._screen,
                ice_servers=self._ice_servers_for(call_id),
                on_connected=lambda: self._media_event(peer, self.machine.media_connected),
                on_lost=lambda: self._media_event(peer, self.machine.media_lost),
                on_channel=lambda channel: self._channel_opened(peer, channel),
                adaptation=self._adaptation,
            )
        return peer

    async def _answer(self, call_id: uuid.UUID, offer_sdp: str) -> None:
        peer = self._call_peer(call_id)
        try:
            answer_sdp = await peer.answer(offer_sdp)
        except (MediaNegotiationError, ApplianceError) as exc:
            if peer is self._peer:
                self._input(self.machine.media_refused, str(exc))
            return
        if peer is self._peer and self.machine.call_id == call_id:
            description = sig.SessionDescription(type="answer", sdp=answer_sdp)
            self.client.post(sig.Description(call_id=call_id, description=description))

    def _ice_servers_for(self, call_id: uuid.UUID) -> list[sig.IceServer]:
        """This call's servers from ``call_answered``; welcome's from an older server."""
        if self._call_ice_servers is not None:
            answered_id, servers = self._call_ice_servers
            if answered_id == call_id and servers:
                return servers
        return self._ice_servers

    def _channel_opened(self, peer: CallPeer | None, channel: RTCDataChannel) -> None:
        """A browser's data channel: this call's documents or text session."""
        from guichet import caption, documents

        if peer is not self._peer:
            logger.info("data channel of another call ignored")
        elif channel.label == documents.CHANNEL_LABEL and self._document_settings is not None:
            self._documents_opened(peer, channel)
        elif channel.label == caption.CHANNEL_LABEL:
            self._caption_opened(channel)
        else:
            logger.info("data channel ignored")

    def _caption_opened(self, channel: RTCDataChannel) -> None:
        from appliance.call.caption import CaptionSession

        self._close_caption()
        session = self._caption = CaptionSession(channel, self._show_caption, self._show_typing)
        channel.on("message", session.received)
        if channel.readyState == "open":
            session.opened()
        else:
            channel.on("open", session.opened)

    def _close_caption(self) -> None:
        caption, self._caption = self._caption, None
        if caption is not None:
            caption.close()
        self._caption_lines = []
        self._typing = None

    def _documents_opened(self, peer: CallPeer | None, channel: RTCDataChannel) -> None:
        from appliance.call.channel import AiortcChannel
        from appliance.call.documents import DocumentSession

        settings = self._document_settings
        assert settings is not None
        call_id = str(self.machine.call_id) if self.machine.call_id else None
        session = DocumentSession(
            AiortcChannel(channel),
            settings,
            self._document_hint,
            call_id=call_id,
            make_room=peer.make_room if peer is not None else None,
        )
        previous, self._documents = self._documents, session
        if previous is not None:
            self._start(previous.close())
        channel.on("message", session.received)
        if channel.readyState == "open":
            session.opened()
        else:
            channel.on("open", session.opened)

    def summary(self) -> str:
        """What the counter is doing, in French (``appliance/call/summary.py``)."""
        return summary(self.machine)

    def occupied(self) -> str | None:
        """What the counter is doing with a citizen (a call, its questionnaire), in French;
        None when nobody would be cut off (remote support's restart, reboot, self-test)."""
        return self.summary() if self.machine.phase in OCCUPIED else None

    def skip_survey(self) -> bool:
        """Leave the questionnaire on screen, if any (the demo's ``skip_survey``)."""
        return self._input(self.machine.skip_survey)

    def audio_route_changed(self, route: AudioRoute) -> None:
        """A headset was plugged in or out (``AudioRouting``): the screen says so."""
        self._input(self.machine.headset_changed, route is AudioRoute.HEADSET)

    def devices_changed(self) -> None:
        """A USB device came or went: the agent's console learns what it can use now."""
        if self._documents is not None:
            self._start(self._documents.send_device_state())

    def _document_hint(self, text: str | None) -> None:
        """What the citizen should do with a document now, over the agent's video."""
        self._document_text = text or None
        self._show_in_call()

    def _show_caption(self, lines: list[str]) -> None:
        """The agent's last typed lines, large over its video (``[]``: none)."""
        self._caption_lines = list(lines)
        self._show_in_call()

    def _key(self, event: KeyEvent) -> None:
        """A key of the USB keyboard: the call's text session takes it; nothing else does."""
        if self.machine.phase is Phase.IN_CALL and self._caption is not None:
            self._caption.key(event)

    def _show_typing(self, typing: Typing | None) -> None:
        """The citizen's input line and last sent line, under the agent's (None: none)."""
        self._typing = typing
        self._show_in_call()

    def _text_info(self, info: ScreenInfo) -> None:
        """The call's text on screen: the agent's lines, the citizen's input line."""
        if self._caption_lines:
            info["caption"] = list(self._caption_lines)
        if self._typing is not None:
            info["typing"] = self._typing.draft
            if self._typing.sent is not None:
                info["typed"] = self._typing.sent

    def _show_in_call(self) -> None:
        call = self.machine.call
        if self._screen is None or call is None or self.machine.phase is not Phase.IN_CALL:
            return
        info: ScreenInfo = {"service": call.service_label} if call.service_label else {}
        if self.machine.headset:
            info["headset"] = True
        if self._document_text:
            info["document"] = self._document_text
        self._text_info(info)
        self._screen.show(ScreenState.IN_CALL, **info)

    def _media_event(self, peer: CallPeer | None, handler: Callable[[], None]) -> None:
        if peer is self._peer:
            self._input(handler)

    def _timer_fired(self, name: str) -> None:
        self._timers.pop(name, None)
        self._input(self.machine.timer_fired, name)

    # --- effects (CallEffects) ---------------------------------------------------------------

    def send(self, message: sig.CounterToServer) -> None:
        if isinstance(message, sig.CallRequest):  # CallPeer takes the browser's candidates
            message = message.model_copy(update={"trickle_ice": True})
        self.client.post(message)

    def light(self, pattern: LightPattern) -> None:
        self._light.show(pattern)

    def screen(self, state: ScreenState, info: ScreenInfo) -> None:
        self._document_text = None  # the machine's screens carry no document hint
        if state is ScreenState.IN_CALL:
            info = info.copy()
            self._text_info(info)  # the call's text stays on screen
        if self._screen is not None:
            self._screen.show(state, **info)

    def emit(self, kind: EventKind, data: dict[str, Scalar]) -> None:
        self._emit(kind, data)

    def start_timer(self, name: str, delay_s: float) -> None:
        self.cancel_timer(name)
        loop = self._loop or asyncio.get_running_loop()
        self._timers[name] = loop.call_later(delay_s, self._timer_fired, name)

    def cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def call_quality(self) -> dict[str, Scalar]:
        peer = self._peer
        return peer.meter.summary() if peer is not None else {}

    def release_media(self) -> None:
        self._call_ice_servers = None  # the call is over: its TURN credentials with it
        peer, self._peer = self._peer, None
        if peer is not None:
            self._start(self._release(peer))
        documents, self._documents = self._documents, None
        if documents is not None:  # wipes the call's documents from memory and disk
            self._start(documents.close())
        self._close_caption()  # forgets the call's typed lines

    def speak(self, text: str | None) -> None:
        if self._speaker is None:
            return
        if text is None or self.machine.phase is Phase.IN_CALL:  # the call has the speaker
            self._speaker.stop()
        else:
            self._speaker.say(text)

    def survey(self, answer: SurveyAnswer) -> None:
        submit = self._submit_survey
        if submit is None:
            return
        # Run outside the call's logging context: nothing ties the answers to the call.
        context = contextvars.copy_context()
        context.run(call_id_var.set, None)
        context.run(self._store_survey, submit, answer)

    @staticmethod
    def _store_survey(submit: SubmitSurvey, answer: SurveyAnswer) -> None:
        submit(answer)
        logger.info("questionnaire answers stored for the fleet")

    async def _release(self, peer: CallPeer) -> None:
        await peer.close()
        self.released += 1
        self.media_released.set()
        logger.info("camera and audio released")

    # --- tasks ---------------------------------------------------------------------------------

    def _start(self, coro: Coroutine[object, object, None]) -> None:
        """Run ``coro`` as a task whose log lines carry the current call's id."""
        context = contextvars.copy_context()
        call_id = self.machine.call_id
        context.run(call_id_var.set, str(call_id) if call_id else None)
        task = asyncio.create_task(coro, name="call:work", context=context)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("call task failed", exc_info=exc)
