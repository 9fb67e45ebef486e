"""Which address a request comes from, when a reverse proxy stands in front.

The server itself is run with the ASGI server's own proxy-header handling switched off
(``fleet_server.serving``): otherwise uvicorn believes ``X-Forwarded-For`` from any
connection on 127.0.0.1, and a login throttle keyed on the client's address is escaped by
changing the header on every try. Instead this middleware trusts ``X-Forwarded-For`` and
``X-Forwarded-Proto`` only on connections from the configured proxies
(``GUICHET_TRUSTED_PROXIES``: addresses or networks; default none), and reads the address
list right to left: the client is the last address that is not itself a trusted proxy —
whatever a client writes in the header lands to the left of what its proxy appends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED_FOR: Final = b"x-forwarded-for"
FORWARDED_PROTO: Final = b"x-forwarded-proto"


def networks(trusted: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(item.strip(), strict=False) for item in trusted]


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: a peer on this machine (notifications' clear-text
    rule: an SMTP relay or a webhook here may be reached without TLS)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[str]) -> str:
    """The client's address: ``peer``, unless ``peer`` is a trusted proxy; then the rightmost
    address of the ``X-Forwarded-For`` values that is not a trusted proxy (an address that is
    not an IP address stops the walk: nothing left of it can be believed)."""
    nets = networks(trusted)
    return _client(peer, forwarded_for, nets)


def _client(peer: str, forwarded_for: Sequence[str], nets: Sequence[Network]) -> str:
    if not nets or not _is_trusted(peer, nets):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
        if not _is_trusted(hop, nets):
            break
    return client


class TrustedProxies:
    """ASGI middleware: the client address (and scheme) as the trusted proxies tell it."""

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app = app
        self.nets = networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        host: str = peer[0] if peer else ""
        proxied = scope["type"] in ("http", "websocket") and bool(host)
        if proxied and self.nets and _is_trusted(host, self.nets):
            scope = dict(scope)
            headers = scope["headers"]
            values = [v.decode("latin-1") for k, v in headers if k == FORWARDED_FOR]
            scope["client"] = (_client(host, values, self.nets), 0)
            protos = [v.decode("latin-1") for k, v in headers if k == FORWARDED_PROTO]
            proto = protos[-1].split(",")[-1].strip().lower() if protos else ""
            if proto in ("http", "https"):
                secure = proto == "https"
                websocket = scope["type"] == "websocket"
                scope["scheme"] = ("wss" if secure else "ws") if websocket else proto
        await self.app(scope, receive, send)
