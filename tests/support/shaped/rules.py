"""The shaped network's configuration as text: each namespace's set-up script and the
router's nftables rules (NAT; loss, the UDP block and the cut). Pure functions: the harness
(``network.py``) runs what they return."""

from __future__ import annotations

from tests.support.shaped.profiles import Profile

COUNTER_NET = "192.168.77"  # the counter's LAN, behind the router's NAT
TABLE = "gpshape"  # the router's nftables table for loss, the UDP block and the cut
# Off on every veth: GSO/TSO/GRO would hand the delay stage 64 KB super-frames it cannot
# send, and frames whose checksum is left to a hardware that does not exist.
OFFLOADS = ("tx", "off", "tso", "off", "gso", "off", "gro", "off")


def ns_script(links: list[str], body: str) -> str:
    """A namespace's set-up: lo up, no IPv6 (no stray link-local candidates, no router
    solicitations through the stage), offloads off on its veths, then ``body``."""
    lines = [
        "ip link set lo up",
        "sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
        "sysctl -qw net.ipv6.conf.default.disable_ipv6=1",
    ]
    for link in links:
        lines += [f"ethtool -K {link} {' '.join(OFFLOADS)}", f"ip link set {link} up"]
    return "\n".join(lines + [line.strip() for line in body.strip().splitlines()])


def nat_rules() -> str:
    return f"""
table ip gpnat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "r-office" ip saddr {COUNTER_NET}.0/24 masquerade
  }}
}}
"""


def _loss_rule(match: str, loss_pct: float) -> str:
    if loss_pct <= 0:
        return ""
    per_100k = round(loss_pct * 1000)
    return f"    {match} numgen random mod 100000 < {per_100k} drop\n"


def filter_rules(profile: Profile, *, link_up: bool) -> str:
    """The router's filter, replaced atomically: add (so the delete cannot fail), delete,
    re-create, in one nft transaction."""
    body = ""
    if not link_up:
        body += '    iifname "r-counter" drop\n    oifname "r-counter" drop\n'
    if profile.block_udp:
        body += '    iifname "r-counter" meta l4proto udp drop\n'
        body += '    oifname "r-counter" meta l4proto udp drop\n'
    body += _loss_rule('iifname "r-counter"', profile.up.loss_pct)
    body += _loss_rule('oifname "r-counter"', profile.down.loss_pct)
    return f"""
table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
{body}  }}
}}
"""
