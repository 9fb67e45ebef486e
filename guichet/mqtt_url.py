"""The broker's address from an ``mqtt://host:port`` or ``mqtts://host:port`` URL: one parser
for the counter's config, its first-boot file, the server's settings and the demo."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from guichet.errors import MqttUrlError

MQTT_PORT = 1883  # IANA: MQTT over TCP
MQTTS_PORT = 8883  # IANA: MQTT over TLS
TLS_BY_SCHEME = {"mqtt": False, "mqtts": True}
PAHO_TLS_BY_SCHEME = {"tcp": False, "ssl": True}  # paho's own spellings, the server accepts them


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def parse_mqtt_url(url: str, *, paho_schemes: bool = False) -> BrokerAddress:
    """(host, port, tls) of ``url``; the port defaults to 1883, or 8883 with TLS.

    Raises ``MqttUrlError`` (a ValueError) for another scheme, no host or a bad port.
    """
    parts = urlsplit(url)
    schemes = TLS_BY_SCHEME | PAHO_TLS_BY_SCHEME if paho_schemes else TLS_BY_SCHEME
    if parts.scheme not in schemes:
        raise MqttUrlError(f"unsupported MQTT URL scheme {parts.scheme!r}", reason="scheme")
    if not parts.hostname:
        raise MqttUrlError("no host in the MQTT URL", reason="host")
    try:
        port = parts.port
    except ValueError:
        raise MqttUrlError("invalid port in the MQTT URL", reason="port") from None
    tls = schemes[parts.scheme]
    return BrokerAddress(parts.hostname, port or (MQTTS_PORT if tls else MQTT_PORT), tls)
