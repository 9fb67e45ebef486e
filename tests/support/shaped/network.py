"""The shaped test network: the counter behind a rural line, the office on the other side.

::

    office (this process's namespace: fleet server, Mosquitto, Chromium)
      gp<pid>o<n>  10.77.<n>.1/24
        │ veth
      r-office 10.77.<n>.2  ─ router namespace: forwarding, NAT (masquerade) of the counter's
        │                     LAN, tbf per direction (egress), nftables loss/UDP block/cut
      r-counter 192.168.77.1/24
        │ veth
      d-router ═ delay namespace: delay_stage.py bridges its two interfaces (L2),
      d-counter                   delaying each direction with jitter
        │ veth
      c-line 192.168.77.2/24 ─ counter namespace (default route via the router)

The office never routes to 192.168.77.0/24: the counter is behind NAT, as in a town hall.
Everything is created with ``ip netns add`` under unique names (``gp<pid>-<n>-…``) and
removed by ``stop()``, also after a failure; ``start()`` first removes what a killed run
left. Needs root, iproute2, nftables, ethtool. ``docs/rural-network.md`` tells more.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tests.support.shaped.profiles import Direction, Profile, Step, profile_named
from tests.support.shaped.rules import COUNTER_NET, OFFLOADS, filter_rules, nat_rules, ns_script

logger = logging.getLogger(__name__)

STAGE = Path(__file__).with_name("delay_stage.py")
COMMAND_TIMEOUT_S = 10.0
OFFICE_NET = "10.77.{n}"  # /24 between the office and the router, one per harness
BURST_MIN_BYTES = 3200  # two full frames: tbf needs at least one MTU
BURST_S = 0.01  # the bucket holds 10 ms at the line's rate
NAME_RE = re.compile(r"^gp(\d+)-\d+-(rt|dl|ct)\b")

_numbers = itertools.count()


class NetworkError(RuntimeError):
    """A command setting up or shaping the network failed."""


def run(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise NetworkError(f"{' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> None:
    """Delete namespaces a killed run left behind (their process is gone)."""
    for line in run("ip", "netns", "list").splitlines():
        match = NAME_RE.match(line)
        if match and not _pid_alive(int(match.group(1))):
            name = line.split()[0]
            logger.info("removing leftover namespace %s", name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@dataclass
class _Live:
    """What is applied now: the profile as given to ``apply``, the same with the live
    rate changes, and whether the line is cut."""

    base: Profile
    profile: Profile
    link_up: bool = True


class ShapedNetwork:
    """The router, delay and counter namespaces, shaped by a ``Profile``.

    Use as a context manager (``with shaped_network("adsl") as net:``) or call
    ``start()``/``stop()``. Controls are plain blocking calls taking a few milliseconds.
    """

    def __init__(self, profile: Profile | str = "lan") -> None:
        self.number = next(_numbers)
        prefix = f"gp{os.getpid()}-{self.number}"
        self.router_ns = f"{prefix}-rt"
        self.delay_ns = f"{prefix}-dl"
        self.counter_ns = f"{prefix}-ct"
        self.office_if = f"gp{os.getpid()}o{self.number}"
        office_net = OFFICE_NET.format(n=10 + self.number % 240)
        self.office_address = f"{office_net}.1"  # where the counter finds the office
        self.counter_public_address = f"{office_net}.2"  # the counter as the office sees it
        self.counter_address = f"{COUNTER_NET}.2"  # its private address, behind NAT
        chosen = profile_named(profile) if isinstance(profile, str) else profile
        self._live = _Live(base=chosen, profile=chosen)
        self._stage: subprocess.Popen[str] | None = None
        self._cleanup = ExitStack()
        self._started = False

    @property
    def profile(self) -> Profile:
        return self._live.profile

    # Lifecycle.
    def start(self) -> None:
        remove_leftovers()
        try:
            self._create()
            self._start_stage()
            self._started = True
            self.apply(self._live.profile)
        except BaseException:
            self.stop()
            raise
        logger.info(
            "shaped network %s up: office %s, counter %s (NAT %s)",
            self.profile.name,
            self.office_address,
            self.counter_address,
            self.counter_public_address,
        )

    def stop(self) -> None:
        self._started = False
        self._cleanup.close()

    def __enter__(self) -> ShapedNetwork:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Live controls.
    def apply(self, profile: Profile | str) -> None:
        """Shape the line as ``profile`` (rates, delays, loss, UDP block); keeps a cut."""
        profile = profile_named(profile) if isinstance(profile, str) else profile
        self._live.base = self._live.profile = profile
        self._shape_rate("r-office", profile.up)
        self._shape_rate("r-counter", profile.down)
        self._set_delays(profile.up, profile.down)
        self._write_filter()

    def set_uplink_rate(self, kbit: int | None) -> None:
        """The counter's uplink rate from now on (None: unlimited)."""
        self._live.profile = replace(self.profile, up=replace(self.profile.up, rate_kbit=kbit))
        self._shape_rate("r-office", self.profile.up)

    def set_downlink_rate(self, kbit: int | None) -> None:
        self._live.profile = replace(self.profile, down=replace(self.profile.down, rate_kbit=kbit))
        self._shape_rate("r-counter", self.profile.down)

    def link_down(self) -> None:
        """Every packet to or from the counter is dropped (the line is cut)."""
        self._live.link_up = False
        self._write_filter()

    def link_up(self) -> None:
        self._live.link_up = True
        self._write_filter()

    async def play_schedule(self, schedule: Sequence[Step] | None = None) -> None:
        """Play the profile's schedule (uplink rate steps) from now; cancel to stop early.

        The uplink gets the profile's own rate back (the one ``apply`` set, without live
        changes) when the schedule ends or is cancelled.
        """
        steps = self.profile.schedule if schedule is None else schedule
        own = self._live.base.up.rate_kbit
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            for step in steps:
                await asyncio.sleep(max(0.0, start + step.at_s - loop.time()))
                kbit = own if step.uplink_kbit is None else step.uplink_kbit
                logger.info("schedule: uplink %s kbit/s at %.1f s", kbit, step.at_s)
                self.set_uplink_rate(kbit)
        finally:
            if self._started:
                self.set_uplink_rate(own)

    # Set-up.
    def _create(self) -> None:
        rt, dl, ct = self.router_ns, self.delay_ns, self.counter_ns
        for ns in (rt, dl, ct):
            run("ip", "netns", "add", ns)
            self._cleanup.callback(subprocess.run, ["ip", "netns", "del", ns], check=False)
        net = self.office_address.rsplit(".", 1)[0]
        run("ip", "link", "add", self.office_if, "type", "veth", "peer", "r-office", "netns", rt)
        run(
            "ip",
            "-n",
            rt,
            "link",
            "add",
            "r-counter",
            "type",
            "veth",
            "peer",
            "d-router",
            "netns",
            dl,
        )
        run(
            "ip",
            "-n",
            dl,
            "link",
            "add",
            "d-counter",
            "type",
            "veth",
            "peer",
            "c-line",
            "netns",
            ct,
        )
        Path(f"/proc/sys/net/ipv6/conf/{self.office_if}/disable_ipv6").write_text("1")
        run("ethtool", "-K", self.office_if, *OFFLOADS)
        run("ip", "addr", "add", f"{self.office_address}/24", "dev", self.office_if)
        run("ip", "link", "set", self.office_if, "up")
        self._in(
            rt,
            "sh",
            "-ec",
            ns_script(
                ["r-office", "r-counter"],
                f"""
            sysctl -qw net.ipv4.ip_forward=1
            ip addr add {net}.2/24 dev r-office
            ip addr add {COUNTER_NET}.1/24 dev r-counter
        """,
            ),
        )
        self._in(
            dl,
            "sh",
            "-ec",
            ns_script(
                ["d-router", "d-counter"],
                """
            ip link set d-router promisc on
            ip link set d-counter promisc on
        """,
            ),
        )
        self._in(
            ct,
            "sh",
            "-ec",
            ns_script(
                ["c-line"],
                f"""
            ip addr add {self.counter_address}/24 dev c-line
            ip route add default via {COUNTER_NET}.1
        """,
            ),
        )
        self._in(rt, "nft", "-f", "-", stdin=nat_rules())

    def _start_stage(self) -> None:
        command = [
            "ip",
            "netns",
            "exec",
            self.delay_ns,
            sys.executable,
            "-u",
            str(STAGE),
            "--up-from",
            "d-counter",
            "--down-from",
            "d-router",
        ]
        stage = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self._stage = stage
        self._cleanup.callback(_stop_process, stage)
        self._expect_stage("ready")

    def _expect_stage(self, word: str) -> None:
        stage = self._stage
        assert stage is not None
        assert stage.stdout is not None
        # The stage answers within milliseconds; a dead one gives EOF at once.
        line = stage.stdout.readline().strip()
        if line != word:
            raise NetworkError(f"delay stage said {line!r} (exit code {stage.poll()})")

    # Shaping.
    def _in(self, ns: str, *args: str, stdin: str | None = None) -> str:
        return run("ip", "netns", "exec", ns, *args, stdin=stdin)

    def _shape_rate(self, device: str, direction: Direction) -> None:
        if direction.rate_kbit is None:
            subprocess.run(
                ["tc", "-n", self.router_ns, "qdisc", "del", "dev", device, "root"],
                capture_output=True,
                check=False,  # nothing to delete: already unshaped
            )
            return
        bytes_s = direction.rate_kbit * 1000 / 8
        burst = max(BURST_MIN_BYTES, int(bytes_s * BURST_S))
        limit = burst + int(bytes_s * direction.queue_ms / 1000)
        run(
            "tc",
            "-n",
            self.router_ns,
            "qdisc",
            "replace",
            "dev",
            device,
            "root",
            "tbf",
            "rate",
            f"{direction.rate_kbit}kbit",
            "burst",
            str(burst),
            "limit",
            str(limit),
        )

    def _set_delays(self, up: Direction, down: Direction) -> None:
        stage = self._stage
        assert stage is not None
        assert stage.stdin is not None
        stage.stdin.write(
            f'{{"up": [{up.delay_ms}, {up.jitter_ms}], '
            f'"down": [{down.delay_ms}, {down.jitter_ms}]}}\n'
        )
        stage.stdin.flush()
        self._expect_stage("ok")

    def _write_filter(self) -> None:
        rules = filter_rules(self.profile, link_up=self._live.link_up)
        self._in(self.router_ns, "nft", "-f", "-", stdin=rules)


def _stop_process(process: subprocess.Popen[str]) -> None:
    if process.stdin is not None:
        process.stdin.close()  # the stage stops on EOF
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def shaped_network(profile: Profile | str = "lan") -> Iterator[ShapedNetwork]:
    """A started ``ShapedNetwork``, removed on exit."""
    with ShapedNetwork(profile) as network:
        yield network
