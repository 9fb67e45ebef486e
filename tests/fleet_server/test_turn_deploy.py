"""``deploy/coturn/turnserver.conf`` as shipped: coturn starts from it (addresses, ports, paths
and secret rewritten, nothing else) and relays for the fleet server's credentials over UDP,
TCP and TLS — and, as an attacker holding a valid credential would find, it relays nothing
to the Pays's private networks, loopback or a cloud's metadata address."""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice import stun

from fleet_server.calls.turn import Party, TurnIssuer
from fleet_server.settings import TURN_SECRET_PLACEHOLDER
from guichet import signalling as sig
from tests.support.coturn import DEPLOY_CONF, Coturn, Transport, deploy_coturn, turn_client

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# What a relay must never reach: loopback, private and shared-address ranges, link-local
# (169.254.169.254 is a cloud's metadata service), multicast and reserved.
NEVER_REACHED = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
]
PRIVATE_PEERS = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.10", "169.254.169.254"]


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Coturn]:
    with deploy_coturn(tmp_path / "coturn") as turn:
        yield turn


def credentials(turn: Coturn) -> sig.IceServer:
    issuer = TurnIssuer((turn.url("udp"),), turn.secret, 3600)
    return issuer.server(uuid.uuid4(), Party.COUNTER, time.time())


def directives() -> list[tuple[str, str]]:
    pairs = []
    for line in DEPLOY_CONF.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition("=")
            pairs.append((key, value))
    return pairs


def denied_ranges() -> list[tuple[Address, Address]]:
    ranges = []
    for key, value in directives():
        if key == "denied-peer-ip":
            first, _, last = value.partition("-")
            ranges.append((ipaddress.ip_address(first), ipaddress.ip_address(last or first)))
    return ranges


def test_the_shipped_file_keeps_the_relay_to_authenticated_public_peers() -> None:
    keys = {key for key, _ in directives()}
    required = {
        "use-auth-secret", "static-auth-secret", "realm", "fingerprint", "no-cli",
        "no-multicast-peers", "no-tcp-relay", "no-tlsv1", "no-tlsv1_1", "cipher-list",
        "user-quota", "total-quota", "tls-listening-port", "cert", "pkey",
        "no-software-attribute", "min-port", "max-port",
    }  # fmt: skip
    assert required - keys == set()
    forbidden = {"allow-loopback-peers", "allowed-peer-ip", "no-auth", "lt-cred-mech", "user"}
    assert forbidden & keys == set()
    assert dict(directives())["tls-listening-port"] == "443"
    # The example secret is one the fleet server refuses: a copied file is not a deployment.
    assert dict(directives())["static-auth-secret"] == TURN_SECRET_PLACEHOLDER


@pytest.mark.parametrize("network", NEVER_REACHED)
def test_every_private_or_special_range_is_denied(network: str) -> None:
    net: Network = ipaddress.ip_network(network)
    ranges = [(a, b) for a, b in denied_ranges() if a.version == net.version]
    # Multicast is refused by no-multicast-peers (checked above), not by a range.
    if net.is_multicast:
        return
    covered = any(a <= net.network_address and net.broadcast_address <= b for a, b in ranges)
    assert covered, f"{network} is not within a denied-peer-ip range"


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_the_shipped_config_relays_for_the_fleet_servers_credentials(
    deployed: Coturn, transport: Transport
) -> None:
    issued = credentials(deployed)
    async with turn_client(deployed, transport, issued.username, issued.credential) as client:
        host, _port = await client.connect()
    assert host == deployed.host


@pytest.mark.parametrize("peer", PRIVATE_PEERS)
async def test_a_credential_holder_cannot_reach_private_addresses_through_the_relay(
    deployed: Coturn, peer: str
) -> None:
    issued = credentials(deployed)
    async with turn_client(deployed, "udp", issued.username, issued.credential) as client:
        await client.connect()
        with pytest.raises(stun.TransactionFailed) as caught:
            await client.channel_bind(0x4000, (peer, 5432))
    assert caught.value.response.attributes["ERROR-CODE"][0] == 403


async def test_the_same_peer_is_reachable_when_the_config_allows_it(turn_server: Coturn) -> None:
    """The test relay allows loopback peers: the refusal above is the shipped file's doing."""
    issued = credentials(turn_server)
    async with turn_client(turn_server, "udp", issued.username, issued.credential) as client:
        await client.connect()
        await client.channel_bind(0x4000, ("127.0.0.1", 5432))
