"""``guichet demo press COUNTER``: press a demo counter's (simulated) call button.

It sends the counter a ``press_button`` command over the demo's broker, as the fleet server
sends any remote command, and prints the counter's acknowledgement. A simulated counter
registers that command; a real one has no such thing.
"""

from __future__ import annotations

import json
import queue
import sys
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from guichet import contract
from guichet.mqtt_url import parse_mqtt_url

ACK_TIMEOUT_S = 15.0
SHORT_PRESS_S = 0.2
LONG_PRESS_S = 2.5  # beyond the counter's default long press (2 s): hangs up


def press(demo_dir: Path, device_id: str, *, long: bool = False) -> int:
    try:
        state = json.loads((demo_dir / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        sys.stderr.write("La démonstration ne tourne pas ici (lancez ./run demo).\n")
        return 2
    if not contract.is_valid_device_id(device_id):
        sys.stderr.write(f"Identifiant de guichet invalide : {device_id}\n")
        return 2
    command = contract.Command(
        request_id=uuid.uuid4(),
        at=contract.utcnow(),
        name="press_button",
        args={"held_s": LONG_PRESS_S if long else SHORT_PRESS_S},
    )
    ack = _send(state["mqtt_url"], state["protocol"], device_id, command)
    if ack is None:
        sys.stderr.write(f"Pas de réponse du guichet {device_id} (est-il en ligne ?)\n")
        return 1
    sys.stdout.write(f"{device_id} : {ack.detail}\n")
    return 0 if ack.ok else 1


def _send(
    url: str, protocol: str, device_id: str, command: contract.Command
) -> contract.CommandAck | None:
    broker = parse_mqtt_url(url)
    version = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=version)
    acks: queue.Queue[contract.CommandAck] = queue.Queue()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            ack = contract.decode(contract.Kind.CMD_ACK, bytes(message.payload))
        except contract.ContractError:
            return
        if isinstance(ack, contract.CommandAck) and ack.request_id == command.request_id:
            acks.put(ack)

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe(contract.topic(device_id, contract.Kind.CMD_ACK), qos=1)
    client.loop_start()
    try:
        topic = contract.topic(device_id, contract.Kind.CMD)
        client.publish(topic, contract.encode(command), qos=1).wait_for_publish(5)
        return acks.get(timeout=ACK_TIMEOUT_S)
    except queue.Empty:
        return None
    finally:
        client.loop_stop()
        client.disconnect()
