"""An in-process nginx zone limiter: `limit_req` semantics for one process, no server needed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from qaio.limits.decision import Decision, Quota
from qaio.limits.nginx import LimitReq, check_cost, step, to_ms
from qaio.limits.zone import DEFAULT_SIZE, Zone


class LocalLimiter:
    """One nginx zone and one `limit_req` on it, kept in this process's memory.

    Use it where one process sees all the traffic (a single worker, tests); use `RedisLimiter` to share a
    budget between processes. The decisions are `nginx.step`'s, on the process's monotonic clock, over a
    zone that keeps at most `size` keys like nginx's. Every key is charged, "" included (nginx would
    skip a limit whose key is empty; the emulator does).
    """

    def __init__(
        self,
        rate: str | float,
        *,
        burst: int = 0,
        delay: int = 0,
        nodelay: bool = False,
        size: int = DEFAULT_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = LimitReq.of(rate, burst=burst, delay=delay, nodelay=nodelay)
        self.zone = Zone(self.limit.rate, size)
        self._clock = clock
        self._lock = threading.Lock()  # the zone's mutex: one decision at a time, as in nginx

    @property
    def quota(self) -> Quota:
        """The limit in the terms of the RateLimit headers."""
        return self.limit.quota

    def decide(self, key: str, *, cost: int = 1, now: float | None = None) -> Decision:
        """The synchronous decision, for callers outside an event loop."""
        check_cost(cost, self.limit)
        with self._lock:
            at = to_ms(self._clock() if now is None else now)
            node = self.zone.lookup(key)
            outcome = step(node, self.limit, at, cost)
            if outcome.accepted and outcome.node is not None:
                if node is None:
                    self.zone.create(key, outcome.node, at)
                else:
                    self.zone.store(key, outcome.node)
            return outcome.decision()

    async def acquire(self, key: str, *, cost: int = 1, now: float | None = None) -> Decision:
        """Charge `cost` requests to `key`; never awaits, so it is atomic within the event loop."""
        return self.decide(key, cost=cost, now=now)
