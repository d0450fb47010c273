"""Rate limiting for qaio: nginx `limit_req` semantics, offline, in-process and shared through Redis.

`nginx.py` is the specification (pure integer arithmetic, time injected); `RequestLimiter` replays
requests through it, `LocalLimiter` and `RedisLimiter` apply it live, `@limit` fronts coroutines with
it. `TokenBucket` is the plain alternative. Nothing here imports redis: callers pass their client.
"""

from __future__ import annotations

from qaio.limits.caps import CapDecision, CapToken, ConcurrencyCap, LocalCap, RedisCap
from qaio.limits.decision import Decision, Limiter, Quota
from qaio.limits.decorators import limit
from qaio.limits.emulator import RequestLimiter, format_replay
from qaio.limits.errors import TooManyRequests
from qaio.limits.headers import rate_limit_headers
from qaio.limits.local import LocalLimiter
from qaio.limits.nginx import LimitReq
from qaio.limits.rates import milli_rate, parse_rate
from qaio.limits.redis import RedisLimiter  # imports no redis: the caller brings the client
from qaio.limits.token_bucket import TokenBucket

__all__ = [
    "CapDecision",
    "CapToken",
    "ConcurrencyCap",
    "Decision",
    "LimitReq",
    "Limiter",
    "LocalCap",
    "LocalLimiter",
    "Quota",
    "RedisCap",
    "RedisLimiter",
    "RequestLimiter",
    "TokenBucket",
    "TooManyRequests",
    "format_replay",
    "limit",
    "milli_rate",
    "parse_rate",
    "rate_limit_headers",
]
