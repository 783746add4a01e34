"""A network namespace of the test's own, its loopback shaped with tc, cut and counted.

Only the intake's port is shaped and counted: an ``htb`` root (``prio`` is
not built into these kernels) sends the packets to or from that port through
a ``tbf`` (the link), everything else (the relays to RabbitMQ and MongoDB)
through an unshaped class.
The loopback MTU is 1500 first: tbf drops, silently, any packet larger than
its burst. A cut drops the intake port's packets in both directions
(iptables in the namespace): what a dead uplink does, TCP sees nothing.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from dataclasses import dataclass, field

HEADER_BYTES = 14 + 20 + 32
"""Per packet on the loopback: Ethernet header, IPv4, TCP with the timestamp option."""


def run(*words: str) -> str:
    return subprocess.run(words, check=True, capture_output=True, text=True).stdout


@dataclass
class Namespace:
    name: str = field(default_factory=lambda: f"dp3f-{secrets.token_hex(3)}")
    port: int = 0
    cut_rules: list[list[str]] = field(default_factory=list)

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def create(self) -> None:
        run("ip", "netns", "add", self.name)
        run("ip", "-n", self.name, "link", "set", "lo", "mtu", "1500")
        run("ip", "-n", self.name, "link", "set", "lo", "up")

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)

    def shape(self, port: int, rate_kbit: int) -> None:
        """The link: ``rate_kbit`` for the intake port's traffic, both ways (both cross the one loopback)."""
        self.port = port
        burst = max(16 * 1024, rate_kbit * 1000 // 8 // 20)  # 50 ms of the rate, at least a few full packets
        limit = max(256 * 1024, rate_kbit * 1000 // 8)  # a modem's buffer: about a second of the rate
        exec_tc = [*self.prefix, "tc"]
        # htb only sorts (both classes far above any rate here); the tbf under class 1:10 is the link.
        run(*exec_tc, "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "20")
        for classid in ("1:10", "1:20"):
            run(*exec_tc, "class", "add", "dev", "lo", "parent", "1:", "classid", classid, "htb",
                "rate", "10gbit", "quantum", "200000")  # fmt: skip
        run(*exec_tc, "qdisc", "add", "dev", "lo", "parent", "1:10", "handle", "10:", "tbf",
            "rate", f"{rate_kbit}kbit", "burst", str(burst), "limit", str(limit))  # fmt: skip
        for direction in ("dport", "sport"):
            run(*exec_tc, "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1",
                "u32", "match", "ip", direction, str(port), "0xffff", "flowid", "1:10")  # fmt: skip

    def wire(self) -> tuple[int, int]:
        """(bytes, packets) the link carried so far, as tc counted them."""
        shown = run(*self.prefix, "tc", "-s", "qdisc", "show", "dev", "lo")
        match = re.search(r"qdisc tbf 10:.*?Sent (\d+) bytes (\d+) pkt", shown, re.S)
        assert match, shown
        return int(match.group(1)), int(match.group(2))

    def cut(self) -> None:
        for direction in ("--dport", "--sport"):
            rule = ["INPUT", "-p", "tcp", direction, str(self.port), "-j", "DROP"]
            run(*self.prefix, "iptables", "-I", *rule)
            self.cut_rules.append(rule)

    def restore(self) -> None:
        while self.cut_rules:
            run(*self.prefix, "iptables", "-D", *self.cut_rules.pop())
