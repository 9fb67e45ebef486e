"""``guichet demo press|skip COUNTER``: press a demo counter's (simulated) call button, or
leave the questionnaire on its screen.

Each sends the counter a command over the demo's broker — ``press_button``, ``skip_survey`` —
as the fleet server sends any remote command, with the server's account, and prints the
counter's acknowledgement, which says what the counter is doing afterwards: after an
answered call the button answers the questionnaire (up to three questions of 30 s each), so
a press there moves an answer instead of calling (issue 17). A simulated counter registers
those commands; a real one has no such thing.

It answers at once when it cannot reach the counter (issue 17): an id the demo does not
have, a counter the demo has stopped, a counter whose retained status says "offline", or one
that goes offline while the command is on its way.
"""

from __future__ import annotations

import queue
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from appliance.call.summary import SURVEY_SUMMARY
from guichet import contract
from guichet.mqtt_url import parse_mqtt_url
from guichet_cli.demo_control import ask
from guichet_cli.demo_state import control_socket, read_state
from guichet_cli.output import complain, say

ACK_TIMEOUT_S = 15.0  # a counter online but silent this long is stuck
STATUS_WAIT_S = 2.0  # a retained status arrives in milliseconds; none: never connected
CONNECT_TIMEOUT_S = 5.0
SHORT_PRESS_S = 0.2
LONG_PRESS_S = 2.5  # beyond the counter's default long press (2 s): hangs up
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Heard = contract.Status | contract.CommandAck


def press(demo_dir: Path, device_id: str, *, long: bool = False) -> int:
    held_s = LONG_PRESS_S if long else SHORT_PRESS_S
    return _command(demo_dir, device_id, "press_button", {"held_s": held_s})


def skip(demo_dir: Path, device_id: str) -> int:
    return _command(demo_dir, device_id, "skip_survey", {})


def _command(demo_dir: Path, device_id: str, name: str, args: dict[str, contract.Scalar]) -> int:
    state = read_state(demo_dir)
    if state is None:
        complain("La démonstration ne tourne pas ici (lancez ./run demo).")
        return EXIT_USAGE
    if device_id not in state.counters:
        known = ", ".join(state.counters)
        complain(f"Guichet inconnu : {device_id} (ceux de la démonstration : {known}).")
        return EXIT_USAGE
    reply = ask(control_socket(demo_dir), "status", device_id)
    if reply is None:
        complain("La démonstration ne répond pas (arrêtée ?) : relancez ./run demo.")
        return EXIT_USAGE
    if reply.running is False:
        complain(f"Le guichet {device_id} est arrêté (guichet demo start {device_id} le relance).")
        return EXIT_FAILED
    command = contract.Command(request_id=uuid.uuid4(), at=contract.utcnow(), name=name, args=args)
    link = _Link(state.mqtt_url, state.protocol, state.mqtt_username, state.mqtt_password)
    try:
        return link.send(device_id, command)
    except OSError as exc:
        complain(f"Broker de la démonstration injoignable ({state.mqtt_url}) : {exc}")
        return EXIT_FAILED


class _Link:
    """One short MQTT session: the counter's status and acks in, one command out."""

    def __init__(self, url: str, protocol: str, username: str | None, password: str | None) -> None:
        self._broker = parse_mqtt_url(url)
        version = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=version)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._heard: queue.Queue[Heard] = queue.Queue()
        self._client.on_message = self._on_message

    def send(self, device_id: str, command: contract.Command) -> int:
        client = self._client
        client.connect(self._broker.host, self._broker.port)
        client.subscribe(
            [
                (contract.topic(device_id, contract.Kind.STATUS), 1),
                (contract.topic(device_id, contract.Kind.CMD_ACK), 1),
            ]
        )
        client.loop_start()
        try:
            status = self._retained_status()
            if status is None:
                complain(f"Le guichet {device_id} ne s'est pas encore connecté ; réessayez.")
                return EXIT_FAILED
            if status.state is not contract.Presence.ONLINE:
                complain(f"Le guichet {device_id} est hors ligne.")
                return EXIT_FAILED
            topic = contract.topic(device_id, contract.Kind.CMD)
            client.publish(topic, contract.encode(command), qos=1).wait_for_publish(
                CONNECT_TIMEOUT_S
            )
            return self._answer(device_id, command)
        finally:
            client.loop_stop()
            client.disconnect()

    def _retained_status(self) -> contract.Status | None:
        try:
            message = self._heard.get(timeout=STATUS_WAIT_S)
        except queue.Empty:
            return None
        return message if isinstance(message, contract.Status) else None

    def _answer(self, device_id: str, command: contract.Command) -> int:
        while True:
            try:
                message = self._heard.get(timeout=ACK_TIMEOUT_S)
            except queue.Empty:
                complain(f"Pas de réponse du guichet {device_id} en {ACK_TIMEOUT_S:.0f} s.")
                return EXIT_FAILED
            if isinstance(message, contract.Status):
                if message.state is not contract.Presence.ONLINE:
                    complain(f"Le guichet {device_id} vient de passer hors ligne.")
                    return EXIT_FAILED
                continue
            if message.request_id != command.request_id:
                continue
            detail = message.detail or ("fait" if message.ok else "échec")
            if not message.ok:
                complain(f"{device_id} : {detail}")
                return EXIT_FAILED
            say(f"{device_id} : {detail}")
            if SURVEY_SUMMARY in detail:
                say(f"  (guichet demo skip {device_id} passe le questionnaire)")
            return EXIT_OK

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            _, kind = contract.parse_topic(message.topic)
            decoded = contract.decode(kind, bytes(message.payload))
        except contract.ContractError:
            return
        if isinstance(decoded, contract.Status | contract.CommandAck):
            self._heard.put(decoded)
