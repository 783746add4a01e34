"""The bandwidth cap and the rate meter. Pure: every call is given the time.

The cap (``--max-kbps``) leaves room on a 0.5 Mbps link for e-mail and calls.
It is a token bucket on the bytes the agent hands to the socket: tokens
accrue at the cap's rate up to ``burst`` bytes, and a send of ``n`` bytes
first waits until ``n`` tokens are there. The burst is small (a quarter of a
second of the cap, at least one 16 KiB write) so the link never sees a
multi-second spike after an idle minute.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MIN_BURST_BYTES = 16 * 1024
"""One write of urllib3's (its block size): a smaller burst would split every write."""
BURST_SECONDS = 0.25


def kbps_to_bytes_per_second(kbps: float) -> float:
    """Kilobits per second (what a link is sold in) to bytes per second."""
    return kbps * 1000.0 / 8.0


class TokenBucket:
    """A rate cap in bytes per second; ``rate`` 0 means no cap."""

    def __init__(self, rate: float, now: float, burst: float | None = None) -> None:
        if rate < 0:
            raise ValueError(f"a rate cap is 0 (none) or positive, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else max(MIN_BURST_BYTES, rate * BURST_SECONDS)
        self._tokens = self.burst
        self._at = now

    def reserve(self, size: int, now: float) -> float:
        """Take ``size`` bytes' worth of tokens; the seconds to wait before sending them (0: at once).

        Tokens may go negative: a write larger than the burst is allowed, and
        the next one waits for the debt to be paid.
        """
        if self.rate == 0:
            return 0.0
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= size
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass
class RateMeter:
    """Bytes sent over the last ``window`` seconds, for the status: the current rate and the time left."""

    window: float = 20.0
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, size: int, now: float) -> None:
        self._samples.append((now, size))
        self._drop_old(now)

    def rate(self, now: float) -> float:
        """Bytes per second over the window (0 when nothing was sent in it)."""
        self._drop_old(now)
        if not self._samples:
            return 0.0
        span = max(now - self._samples[0][0], 1.0)
        return sum(size for _, size in self._samples) / span

    def _drop_old(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()


def seconds_left(remaining_bytes: int, rate: float) -> float | None:
    """Time to send ``remaining_bytes`` at ``rate`` bytes/s; None when nothing is moving."""
    if remaining_bytes <= 0:
        return 0.0
    return None if rate <= 0 else remaining_bytes / rate
