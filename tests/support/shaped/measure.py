"""What the shaped network does to traffic, measured with plain sockets.

The office's end runs in this process's namespace, the counter's end in a thread inside the
counter's namespace (``netns.start_in_netns``). Both ends share one clock (one process), so
one-way delays are measured directly. The counter is behind NAT: for the downlink, the
counter's socket speaks first and the office answers to the address it saw.

``python -m tests.support.shaped.measure [profile…]`` (as root, inside ``unshare --net``)
prints the figures of each profile: ``docs/rural-network.md`` quotes them.
"""

from __future__ import annotations

import logging
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tests.support.shaped.netns import start_in_netns
from tests.support.shaped.network import ShapedNetwork, shaped_network
from tests.support.shaped.profiles import PROFILES

logger = logging.getLogger(__name__)

HEADER = struct.Struct("!Id")  # sequence number, send time (time.monotonic)
OVERHEAD_BYTES = 42  # Ethernet 14 + IPv4 20 + UDP 8: what tbf counts beyond the payload
TICK_S = 0.002  # the sender's pacing step
QUIET_S = 0.6  # the receiver stops after this long without a packet once the sender is done:
# more than the longest delay plus a full queue (170 + 200 ms)
HELLO = b"hello"
HELLO_EVERY_S = 0.05


@dataclass(frozen=True)
class Flow:
    """What one paced UDP flow saw."""

    sent: int
    received: int
    payload_bytes: int
    first_s: float  # receive times (monotonic) of the first and last packets
    last_s: float
    delays_ms: tuple[float, ...]  # one way, in arrival order

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 0.0

    @property
    def wire_kbit(self) -> float:
        """Received rate counted as tbf counts it (with the headers), in kbit/s."""
        span = self.last_s - self.first_s
        if self.received < 2 or span <= 0:
            return 0.0
        bits = (self.received - 1) * (self.payload_bytes + OVERHEAD_BYTES) * 8
        return bits / span / 1000

    @property
    def median_delay_ms(self) -> float:
        return statistics.median(self.delays_ms) if self.delays_ms else float("nan")


def _send_paced(
    sock: socket.socket, to: tuple[str, int] | None, rate_pps: float, count: int, size: int
) -> None:
    padding = b"\0" * (size - HEADER.size)
    start = time.monotonic()
    for seq in range(count):
        due = start + seq / rate_pps
        delay = due - time.monotonic()
        if delay > TICK_S:
            time.sleep(delay)
        packet = HEADER.pack(seq, time.monotonic()) + padding
        try:
            if to is None:
                sock.send(packet)
            else:
                sock.sendto(packet, to)
        except OSError:  # ENOBUFS/EPERM when a filter drops at once: a lost packet
            pass


def _receive(
    sock: socket.socket, done: threading.Event, size: int, sent: int, *, hello: bool = False
) -> Flow:
    """Receive a flow until the sender is done and the line has been quiet for QUIET_S.

    With ``hello``, say HELLO every HELLO_EVERY_S until the first packet arrives: it opens
    the NAT's mapping and tells the office where to send, and the line may lose it."""
    delays: list[float] = []
    first = last = 0.0
    quiet_since = time.monotonic()
    while True:
        waiting = hello and not delays
        if waiting:
            sock.send(HELLO)
        sock.settimeout(HELLO_EVERY_S if waiting else QUIET_S)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if done.is_set() and time.monotonic() - quiet_since >= QUIET_S:
                break
            continue
        now = quiet_since = time.monotonic()
        if len(data) < HEADER.size or data == HELLO:
            continue
        _, sent_at = HEADER.unpack_from(data)
        first = first or now
        last = now
        delays.append((now - sent_at) * 1000)
    return Flow(sent, len(delays), size, first, last, tuple(delays))


def udp_flow(
    network: ShapedNetwork, *, up: bool, kbit: float, seconds: float, size: int = 1200
) -> Flow:
    """A UDP flow offered at ``kbit`` (counted with headers) for ``seconds``, up (counter →
    office) or down; what arrived."""
    rate_pps = kbit * 1000 / 8 / (size + OVERHEAD_BYTES)
    count = max(1, int(rate_pps * seconds))
    done = threading.Event()
    office = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    office.bind((network.office_address, 0))
    office_end = (network.office_address, office.getsockname()[1])
    try:
        if up:

            def counter_send() -> None:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.connect(office_end)
                    _send_paced(sock, None, rate_pps, count, size)
                done.set()

            sending = start_in_netns(network.counter_ns, counter_send)
            flow = _receive(office, done, size, count)
            sending.result(10)
            return flow

        def counter_receive() -> Flow:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.connect(office_end)
                return _receive(sock, done, size, count, hello=True)

        receiving = start_in_netns(network.counter_ns, counter_receive)
        office.settimeout(5)
        _, counter_end = office.recvfrom(64)
        _send_paced(office, counter_end, rate_pps, count, size)
        done.set()
        return receiving.result(30)
    finally:
        office.close()


def tcp_connects(network: ShapedNetwork, timeout_s: float = 2.0) -> bool:
    """Whether the counter can open a TCP connection to the office and get a byte back."""
    with socket.socket() as server:
        server.bind((network.office_address, 0))
        server.listen()
        server.settimeout(timeout_s + 1)
        port = server.getsockname()[1]

        def connect() -> bool:
            try:
                with socket.create_connection((network.office_address, port), timeout_s) as c:
                    return c.recv(1) == b"!"
            except OSError:
                return False

        connecting = start_in_netns(network.counter_ns, connect)
        try:
            conn, _ = server.accept()
        except TimeoutError:
            return connecting.result(timeout_s + 5)
        with conn:
            conn.sendall(b"!")
        return connecting.result(timeout_s + 5)


def office_peers(port: int) -> set[str]:
    """The addresses of the peers connected to a TCP port of the office (from ``ss``)."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def counter_source_address(network: ShapedNetwork) -> str:
    """The address the office sees the counter's UDP come from (the router's, by NAT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as office:
        office.bind((network.office_address, 0))
        office.settimeout(5)
        end = (network.office_address, office.getsockname()[1])

        def hello() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for _ in range(20):  # the line may lose a few
                    sock.sendto(HELLO, end)
                    time.sleep(0.01)

        sending = start_in_netns(network.counter_ns, hello)
        _, (address, _) = office.recvfrom(64)
        sending.result(10)
        return str(address)


@dataclass(frozen=True)
class Figures:
    up_kbit: float
    down_kbit: float
    up_delay: Flow
    down_delay: Flow
    up_loss: Flow
    down_loss: Flow


DELAY_PPS = 25  # sparse: 40 ms apart, more than the jitter's range, so order-keeping is moot
DELAY_S = 4.0  # 100 delays each way: their median is within ± jitter/10 at one sigma
LOST_EXPECTED = 20  # packets a loss flow expects to lose: ± 4.5 at one sigma
LOSS_PACKETS_MIN = 1000
SMALL = 64  # bytes of payload of the delay and loss flows
LOSS_KBIT_MAX = 4000  # an unshaped line's loss flow: 64-byte packets at 30 kpps would
# measure the machine (the stage, the receiving thread), not the line


def _both_ways(
    network: ShapedNetwork, up_kbit: float, down_kbit: float, seconds: float, size: int = 1200
) -> tuple[Flow, Flow]:
    """An uplink and a downlink flow at the same time (each direction has its own queue)."""
    with ThreadPoolExecutor(1) as pool:
        down = pool.submit(udp_flow, network, up=False, kbit=down_kbit, seconds=seconds, size=size)
        up = udp_flow(network, up=True, kbit=up_kbit, seconds=seconds, size=size)
        return up, down.result(seconds + 30)


def measure(network: ShapedNetwork, seconds: float = 3.0) -> Figures:
    """Rate (offered 1.5× the line), one-way delay and loss, per direction."""
    profile = network.profile
    up_rate = profile.up.rate_kbit or 50_000
    down_rate = profile.down.rate_kbit or 50_000
    up, down = _both_ways(network, up_rate * 1.5, down_rate * 1.5, seconds)
    delay_kbit = DELAY_PPS * (SMALL + OVERHEAD_BYTES) * 8 / 1000
    up_delay, down_delay = _both_ways(network, delay_kbit, delay_kbit, DELAY_S, SMALL)
    # Well under the line's rate, so that every loss is the filter's; enough packets to
    # expect LOST_EXPECTED losses at the profile's rate.
    loss_pct = max(profile.up.loss_pct, profile.down.loss_pct, 1.0)
    packets = max(LOSS_PACKETS_MIN, round(LOST_EXPECTED * 100 / loss_pct))
    loss_kbit = min(up_rate, down_rate, LOSS_KBIT_MAX) * 0.5
    loss_s = packets * (SMALL + OVERHEAD_BYTES) * 8 / 1000 / loss_kbit
    up_loss, down_loss = _both_ways(network, loss_kbit, loss_kbit, loss_s, SMALL)
    return Figures(up.wire_kbit, down.wire_kbit, up_delay, down_delay, up_loss, down_loss)


def describe(name: str, figures: Figures) -> str:
    def delays(flow: Flow) -> str:
        if not flow.delays_ms:
            return "—"
        return (
            f"{flow.median_delay_ms:.0f} ms ({min(flow.delays_ms):.0f}–{max(flow.delays_ms):.0f})"
        )

    return (
        f"| {name} | {figures.up_kbit:.0f} | {figures.down_kbit:.0f} "
        f"| {delays(figures.up_delay)} | {delays(figures.down_delay)} "
        f"| {figures.up_loss.loss_pct:.1f} % | {figures.down_loss.loss_pct:.1f} % |"
    )


def describe_blocked(network: ShapedNetwork) -> str:
    """A line without UDP: what got through of a UDP flow, and whether TCP connects."""
    flow = udp_flow(network, up=True, kbit=100, seconds=1.0, size=100)
    tcp = "TCP connects" if tcp_connects(network) else "TCP blocked too"
    return (
        f"| {network.profile.name} | UDP up: {flow.received} of {flow.sent} packets; {tcp} "
        "| | | | | |"
    )


def main(names: list[str], write: Callable[[str], object] = sys.stdout.write) -> None:
    logging.basicConfig(level=logging.WARNING)
    write(
        "| profile | up kbit/s | down kbit/s | up one-way | down one-way | up loss "
        "| down loss |\n|---|---|---|---|---|---|---|\n"
    )
    for name in names or list(PROFILES):
        with shaped_network(name) as network:
            if network.profile.block_udp:
                write(describe_blocked(network) + "\n")
            else:
                write(describe(name, measure(network)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
