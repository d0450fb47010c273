"""The records every limiter speaks: a `Decision` per request, a `Quota` for headers, the `Limiter` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Decision:
    """What a limiter says about one request.

    `accepted` requests may run after `delay` seconds (nginx's `delay=`; 0 means now). `excess` is the
    bucket's fill in requests after this decision, as nginx logs it. `retry_after` is set on rejections:
    the earliest time, in seconds, at which the same request would be accepted.
    """

    accepted: bool
    delay: float = 0.0
    excess: float = 0.0
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Quota:
    """What a limiter allows, in the terms of the RateLimit headers.

    `limit` requests pass at once from an empty bucket; requests stop passing once the fill would exceed
    `burst`; the fill drains at `rate` requests per second.
    """

    limit: int
    burst: float
    rate: float


@runtime_checkable
class Limiter(Protocol):
    """A keyed rate limiter: one atomic decision per call, so callers never read-modify-write themselves."""

    async def acquire(self, key: str, *, cost: int = 1, now: float | None = None) -> Decision:
        """Charge `cost` requests to `key` and say whether (and after what delay) they may run."""
        ...
