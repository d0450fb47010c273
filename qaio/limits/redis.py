"""The distributed nginx limiter: every process shares one budget per key through Redis.

Each decision is one call of `lua/limit_req.lua`, so the read, the arithmetic and the write happen
atomically on the server, on the server's clock (no client clock skew). redis-py is needed only by the
caller who builds the client: this module never imports it at run time.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from qaio.errors import ConfigError
from qaio.limits.decision import Decision, Quota
from qaio.limits.nginx import MILLI, LimitReq, check_cost, to_ms

if TYPE_CHECKING:
    from redis.asyncio import Redis

#: The script's source, read once per process; the client caches its SHA and loads it on first use.
SCRIPT = resources.files("qaio.limits").joinpath("lua/limit_req.lua").read_text(encoding="utf-8")


class RedisLimiter:
    """One nginx `limit_req` whose zone lives in Redis under `prefix`.

    Keys are `{prefix}:{key}` hashes that expire once idle long enough to be worth nothing. Unlike an
    nginx zone there is no `size`: Redis memory and those expiries bound it instead.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        rate: str | float,
        burst: int = 0,
        delay: int = 0,
        nodelay: bool = False,
    ) -> None:
        if not prefix:
            raise ConfigError("RedisLimiter needs a key prefix, so its keys cannot collide with others")
        self.redis = redis
        self.prefix = prefix
        self.limit = LimitReq.of(rate, burst=burst, delay=delay, nodelay=nodelay)
        self._script: Any = redis.register_script(SCRIPT)

    @property
    def quota(self) -> Quota:
        """The limit in the terms of the RateLimit headers."""
        return self.limit.quota

    def key(self, key: str) -> str:
        """The Redis key holding `key`'s state."""
        return f"{self.prefix}:{key}"

    async def acquire(self, key: str, *, cost: int = 1, now: float | None = None) -> Decision:
        """Charge `cost` requests to `key` on the server's clock.

        `now` (seconds) replaces the server clock; it exists for deterministic replays and tests and must
        not be mixed with live traffic on the same keys.
        """
        check_cost(cost, self.limit)
        clock = "" if now is None else str(to_ms(now))
        limit = self.limit
        args = [limit.rate, limit.burst, limit.delay, cost, clock]
        accepted, delay, excess, retry = await self._script(keys=[self.key(key)], args=args)
        return Decision(
            accepted=bool(accepted),
            delay=int(delay) / 1000,
            excess=int(excess) / MILLI,
            retry_after=None if int(retry) < 0 else int(retry) / 1000,
        )
