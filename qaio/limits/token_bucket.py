"""A per-process token bucket: the simplest limiter, for work that needs no key and no shared state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from qaio.limits.decision import Decision, Quota


class TokenBucket:
    """`capacity` tokens, refilled at `refill_per_second`; a call takes `cost` tokens or is refused.

    Unlike nginx's leaky bucket it never delays: a refusal carries `retry_after`, the time until enough
    tokens are back. It starts full. Thread-safe, so sync and async callers can share one bucket.
    """

    def __init__(
        self, capacity: float, refill_per_second: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity <= 0 or refill_per_second <= 0:
            raise ValueError(f"capacity and refill must be positive, got {capacity}, {refill_per_second}")
        self.capacity = float(capacity)
        self.refill_per_second = float(refill_per_second)
        self._clock = clock
        self._tokens = self.capacity
        self._last: float | None = None
        self._lock = threading.Lock()

    @property
    def quota(self) -> Quota:
        """The bucket in the terms of the RateLimit headers."""
        return Quota(limit=int(self.capacity), burst=self.capacity, rate=self.refill_per_second)

    def try_acquire(self, cost: float = 1, now: float | None = None) -> Decision:
        """Take `cost` tokens at `now` (seconds, default the bucket's clock) if they are there."""
        if not 0 < cost <= self.capacity:
            raise ValueError(f"cost must be in (0, capacity={self.capacity}], got {cost}")
        with self._lock:
            now = self._clock() if now is None else now
            if self._last is not None and now > self._last:
                refill = (now - self._last) * self.refill_per_second
                self._tokens = min(self.capacity, self._tokens + refill)
            if self._last is None or now > self._last:
                self._last = now  # a clock that runs back refills nothing and is not remembered
            if self._tokens >= cost:
                self._tokens -= cost
                return Decision(accepted=True, excess=self.capacity - self._tokens)
            wait = (cost - self._tokens) / self.refill_per_second
            return Decision(accepted=False, excess=self.capacity - self._tokens, retry_after=wait)
