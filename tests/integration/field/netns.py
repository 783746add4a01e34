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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.intake.harness import IntakeProcess

RELAY = Path(__file__).with_name("relay.py")
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


@dataclass
class NetnsIntake(IntakeProcess):
    prefix: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "intake.log").open("ab")
        self.process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "dp3_intake"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        probe = f"import urllib.request; urllib.request.urlopen('{self.url}/healthz', timeout=2)"
        deadline = time.monotonic() + timeout
        while subprocess.run([*self.prefix, sys.executable, "-c", probe], capture_output=True).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"intake in the namespace did not start: {self.log()[-2000:]}")
            time.sleep(0.3)


def relay(space: Namespace, folder: Path, port: int) -> list[subprocess.Popen[str]]:
    """RabbitMQ or MongoDB's host port, reachable at the same port inside the namespace."""
    socket_path = str(folder / f"relay-{port}.sock")
    started = [
        subprocess.Popen(
            [sys.executable, str(RELAY), "host", socket_path, str(port)], stdout=subprocess.PIPE, text=True
        ),
        subprocess.Popen(
            [*space.prefix, sys.executable, str(RELAY), "netns", socket_path, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        ),
    ]
    for process in started:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return started
