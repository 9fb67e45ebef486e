"""The shaped network's user-space delay stage: an L2 bridge between two interfaces that
holds each frame for a delay with jitter, per direction, keeping the frames' order.

This machine's kernel has no netem, so delay cannot be a qdisc. The harness
(``tests/support/shaped/network.py``) runs this file as its own process in the "delay"
namespace, whose only two interfaces are the ends of the router's and the counter's veths:
``--up-from`` (the counter's side: frames arriving there go up, to the router) and
``--down-from`` (the router's side). Standard library only: it runs as a plain script.

Each frame gets ``send_at = max(previous send_at, now + delay ± uniform jitter)`` in its
direction: jitter varies the spacing without reordering (a line reorders rarely; RTP
handles it but TCP would fall into retransmissions). A direction's queue is a deque whose
head is always the next frame due, so the loop is one ``select`` with a float timeout.

Parameters change live: one JSON line on stdin, ``{"up": [delay_ms, jitter_ms],
"down": [delay_ms, jitter_ms]}``. The stage stops when stdin closes (its parent is gone).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import socket
import sys
import time
from collections import deque

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23  # Linux ≥ 4.20: do not read back the frames we send
FRAME_MAX = 65_536  # a GSO super-frame would be larger than the MTU: offloads are turned off
QUEUE_MAX = 20_000  # frames held per direction; beyond, drop (a full line card)
RCVBUF = 4 << 20  # bytes: bursts of an 8 Mbit/s downlink while we sleep
SLACK_S = 0.0002  # send frames due within this margin now rather than sleep again


class Direction:
    """One direction's FIFO of (send_at, frame) and its delay parameters."""

    def __init__(self, out: socket.socket) -> None:
        self.out = out
        self.queue: deque[tuple[float, bytes]] = deque()
        self.delay_s = 0.0
        self.jitter_s = 0.0
        self.last_at = 0.0
        self.dropped = 0

    def set(self, delay_ms: float, jitter_ms: float) -> None:
        self.delay_s = max(0.0, delay_ms / 1000)
        self.jitter_s = max(0.0, min(jitter_ms / 1000, self.delay_s))

    def push(self, frame: bytes, now: float) -> None:
        if len(self.queue) >= QUEUE_MAX:
            self.dropped += 1
            return
        at = now + self.delay_s
        if self.jitter_s:
            at += random.uniform(-self.jitter_s, self.jitter_s)
        at = max(at, self.last_at)
        self.last_at = at
        self.queue.append((at, frame))

    def flush(self, now: float) -> float | None:
        """Send what is due; return when the next frame is due (None: queue empty)."""
        queue = self.queue
        while queue and queue[0][0] <= now + SLACK_S:
            _, frame = queue.popleft()
            try:
                self.out.send(frame)
            except OSError:  # ENOBUFS, the interface going down: a lost frame
                self.dropped += 1
        return queue[0][0] if queue else None


def packet_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


def drain(sock: socket.socket, into: Direction) -> None:
    now = time.monotonic()
    while True:
        try:
            frame = sock.recv(FRAME_MAX)
        except BlockingIOError:
            return
        into.push(frame, now)


def apply(line: str, up: Direction, down: Direction) -> None:
    settings = json.loads(line)
    if "up" in settings:
        up.set(*settings["up"])
    if "down" in settings:
        down.set(*settings["down"])


def run(up_from: str, down_from: str) -> None:
    counter_side = packet_socket(up_from)
    router_side = packet_socket(down_from)
    up = Direction(out=router_side)  # frames from the counter, towards the router
    down = Direction(out=counter_side)
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, True)
    pending = b""
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    timeout: float | None = None
    while True:
        readable, _, _ = select.select([counter_side, router_side, stdin], [], [], timeout)
        for ready in readable:
            if ready is counter_side:
                drain(counter_side, up)
            elif ready is router_side:
                drain(router_side, down)
            else:
                chunk = os.read(stdin, 4096)
                if not chunk:
                    return  # the harness is gone
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    apply(line.decode(), up, down)
                    sys.stdout.write("ok\n")
                    sys.stdout.flush()
        now = time.monotonic()
        due = [at for at in (up.flush(now), down.flush(now)) if at is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--up-from", required=True, help="the counter's side interface")
    parser.add_argument("--down-from", required=True, help="the router's side interface")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        run(args.up_from, args.down_from)


if __name__ == "__main__":
    main()
