"""A token bucket for "at most N operations per second", with an injectable clock and wait.

The wait function is normally a cancel event's `wait`, so a throttled action stops at once when
the operator cancels instead of sleeping out its budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable

UNLIMITED = 0


class RateBudget:
    """`take(n)` returns when n more operations fit in the budget (rate per second, burst tokens).

    A rate of 0 means no limit. Tokens accrue continuously; a request larger than the burst is
    allowed to drive the bucket negative, so big batches are paced by the average, not refused.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] = time.sleep,
    ) -> None:
        if rate < 0:
            raise ValueError("rate must be 0 (no limit) or positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(rate / 10, 1.0)
        self.clock = clock
        self.wait = wait
        self._tokens = self.burst
        self._last = clock()
        self.waited_s = 0.0

    @property
    def limited(self) -> bool:
        return self.rate > 0

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, n: int) -> float:
        """Spends n tokens, waiting first while the bucket is in debt; returns the seconds waited."""
        if not self.limited or n <= 0:
            return 0.0
        self._refill()
        self._tokens -= n
        if self._tokens > -1e-6:  # float noise is not a debt worth a wait
            return 0.0
        delay = -self._tokens / self.rate
        self.waited_s += delay
        self.wait(delay)
        self._refill()
        return delay


def batch_size(rate: float, largest: int, smallest: int = 10) -> int:
    """A batch that keeps pacing smooth: about a tenth of a second of budget, within bounds."""
    if rate <= 0:
        return largest
    return max(smallest, min(largest, int(rate / 10)))
