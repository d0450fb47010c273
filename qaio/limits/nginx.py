"""nginx `limit_req` arithmetic, pure and with time injected: the one specification of qaio's limiters.

Transcribed from ngx_http_limit_req_module.c (nginx 1.15.7+, which added `delay=`). Everything is an
integer, as in nginx: the fill ("excess") is in milli-requests, the rate in milli-requests per second,
times in milliseconds. Per request, with `ms` the time since the key's last accepted request:

    excess = max(0, excess - rate * ms / 1000 + 1000)   # leak, then add this request
    excess > burst        -> reject, and store nothing
    excess <= delay       -> accept now
    otherwise             -> accept after (excess - delay) * 1000 / rate ms

A key nginx has not seen yet starts at excess 0 (its first request does not count). A delayed request is
charged when it arrives, so one arriving while earlier ones are still delayed sees their charge in the
excess and waits longer; nginx keeps no queue and never re-checks a request after its delay.

The emulator (`emulator.py`), the local limiter (`local.py`) and the Redis script (`lua/limit_req.lua`)
all perform `step` below; tests hold the Lua and real nginx to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from qaio.errors import ConfigError
from qaio.limits.decision import Decision, Quota
from qaio.limits.rates import milli_rate

#: One request, in nginx's units.
MILLI = 1000
#: nginx's `nodelay`: a delay threshold of NGX_MAX_INT_T_VALUE / 1000 requests, above any reachable fill.
NODELAY = (2**63 - 1) // 1000 * 1000
#: A clock that jumped back further than this counts as 1 ms elapsed, as in nginx (timers wrapping).
CLOCK_JUMP_MS = 60_000


@dataclass(frozen=True, slots=True)
class LimitReq:
    """One `limit_req` directive together with its zone's rate, in nginx's integer units."""

    rate: int  #: milli-requests per second (nginx `ctx->rate`)
    burst: int = 0  #: milli-requests
    delay: int = 0  #: milli-requests accepted without delay; `NODELAY` for nginx's `nodelay`

    def __post_init__(self) -> None:
        if self.rate < 1 or self.burst < 0 or self.delay < 0:
            raise ConfigError(f"invalid limit_req: {self!r}")

    @classmethod
    def of(cls, rate: str | float, *, burst: int = 0, delay: int = 0, nodelay: bool = False) -> LimitReq:
        """Build from nginx's configuration words: `rate=10r/s`, `burst=20`, `delay=8` or `nodelay`."""
        return cls.in_zone(milli_rate(rate), burst=burst, delay=delay, nodelay=nodelay)

    @classmethod
    def in_zone(cls, rate: int, *, burst: int = 0, delay: int = 0, nodelay: bool = False) -> LimitReq:
        """Build for a zone whose rate is already in milli-requests per second."""
        if nodelay and delay:
            raise ConfigError("give either delay= or nodelay, not both (nginx would keep the last one)")
        if burst < 0 or delay < 0:
            raise ConfigError(f"burst and delay must be >= 0, got burst={burst} delay={delay}")
        return cls(rate, burst * MILLI, NODELAY if nodelay else delay * MILLI)

    @property
    def quota(self) -> Quota:
        """This limit as a header quota: burst + 1 requests pass at once (a new key's first is free)."""
        return Quota(limit=self.burst // MILLI + 1, burst=self.burst / MILLI, rate=self.rate / MILLI)

    @property
    def max_cost(self) -> int:
        """The largest cost a request can have and still be accepted by an empty bucket."""
        return self.burst // MILLI + 1


@dataclass(frozen=True, slots=True)
class Node:
    """One key's state in a zone: its fill and when it was last charged."""

    excess: int  #: milli-requests
    last: int | None  #: ms; None for a node nginx created but never charged (its `last = 0`)


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one decision in nginx's units, and the node to store (unchanged on rejection)."""

    accepted: bool
    excess: int  #: milli-requests: the fill after this request, or the fill that got it rejected
    delay: int  #: ms
    retry_after: int | None  #: ms, on rejections
    node: Node | None

    def decision(self) -> Decision:
        """The same outcome in seconds and requests, for callers."""
        return Decision(
            accepted=self.accepted,
            delay=self.delay / 1000,
            excess=self.excess / MILLI,
            retry_after=None if self.retry_after is None else self.retry_after / 1000,
        )


def to_ms(seconds: float) -> int:
    """nginx's clock is whole milliseconds; the epsilon keeps 4.35 s from becoming 4349 ms."""
    return int((seconds * 1000 + 1e-6) // 1)


def elapsed(now: int, last: int) -> int:
    """Milliseconds since `last`, clamped like nginx: a small jump back is 0, a large one is 1."""
    ms = now - last
    if ms < -CLOCK_JUMP_MS:
        return 1
    return max(ms, 0)


def charge(node: Node | None, rate: int, now: int, cost: int = 1) -> tuple[int, int]:
    """The fill after leaking since the last charge and adding this request, and the new `last`.

    A node that does not exist (or was never charged) starts empty: nginx gives a new key excess 0, so a
    request of cost c starts at (c - 1) * 1000.
    """
    if node is None or node.last is None:
        return (cost - 1) * MILLI, now
    ms = elapsed(now, node.last)
    excess = max(0, node.excess - rate * ms // 1000 + cost * MILLI)
    return excess, (now if ms else node.last)  # nginx leaves `last` alone when no time passed


def delay_ms(excess: int, limit: LimitReq) -> int:
    """How long nginx holds an accepted request: the part of the fill above `delay`, drained at `rate`."""
    if excess <= limit.delay:
        return 0
    return (excess - limit.delay) * 1000 // limit.rate


def retry_after_ms(excess: int, limit: LimitReq) -> int:
    """After a rejection: the wait until the fill has leaked down to `burst` (ceiling, so it is enough)."""
    return -(-(excess - limit.burst) * 1000 // limit.rate)


def check_cost(cost: int, limit: LimitReq) -> None:
    """Refuse costs no bucket could ever accept, instead of rejecting them forever."""
    if not 1 <= cost <= limit.max_cost:
        raise ValueError(f"cost must be between 1 and burst + 1 = {limit.max_cost}, got {cost}")


def step(node: Node | None, limit: LimitReq, now: int, cost: int = 1) -> Step:
    """One `limit_req` decision for one key. The Lua script is this function, line for line."""
    excess, last = charge(node, limit.rate, now, cost)
    if excess > limit.burst:
        return Step(False, excess, 0, retry_after_ms(excess, limit), node)
    return Step(True, excess, delay_ms(excess, limit), None, Node(excess, last))


def idle_ms(excess: int, rate: int) -> int:
    """How long after its last charge a node is worth no more than no node at all.

    From then on `charge` gives the node the same fill as a new key (for cost 1), so a store may drop
    it: this is the expiry the Redis script sets.
    """
    return -(-(excess + MILLI) * 1000 // rate)
