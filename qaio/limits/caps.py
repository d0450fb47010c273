"""Concurrency caps: at most `limit` holders of a key at once, as leases that expire.

A cap counts work in flight (a gateway's jobs queued plus running). A bare counter leaks for good when
a holder dies between increment and decrement, so every slot is a lease: a random token with an expiry.
A holder that lives releases its slot (or extends it while it waits); one that dies frees it when the
lease runs out. `LocalCap` keeps slots in this process; `RedisCap` in a Redis zset scored by expiry,
one Lua script per operation (`lua/cap_*.lua`), so every gateway process and machine shares one cap.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from qaio.errors import ConfigError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from qaio.brokers.redis.connection import Lane


@dataclass(frozen=True, slots=True)
class CapToken:
    """One held slot: pass it to `release` or `extend`."""

    key: str
    token: str


@dataclass(frozen=True, slots=True)
class CapDecision:
    """What a cap says about one acquire.

    `held` is the number of slots in use after the decision. On rejection `retry_after` is the time in
    seconds until the earliest held lease expires: a slot is certainly free by then, and usually much
    sooner, since holders release as soon as their work is done.
    """

    accepted: bool
    held: int
    token: CapToken | None = None
    retry_after: float | None = None


@runtime_checkable
class ConcurrencyCap(Protocol):
    """A keyed concurrency cap whose slots are leases; each call is one atomic step."""

    async def acquire(self, key: str, limit: int, lease: float) -> CapDecision:
        """Take a slot of `key` for `lease` seconds if fewer than `limit` are held."""
        ...

    async def release(self, token: CapToken) -> bool:
        """Give the slot back; False if it was not held any more (released, or its lease ran out)."""
        ...

    async def extend(self, token: CapToken, lease: float) -> bool:
        """Renew the slot for `lease` seconds from now; False if it expired meanwhile (it is lost)."""
        ...


def _check(limit: int, lease: float) -> None:
    if limit < 0 or not lease > 0:
        raise ConfigError(f"a cap needs limit >= 0 and a positive lease, got limit={limit} lease={lease}")


def new_token() -> str:
    """64 random bits: unique among the slots of one key for any realistic cap."""
    return secrets.token_hex(8)


class LocalCap:
    """Slots in this process's memory: for one gateway process, tests, and the embedded brokers.

    Thread-safe. `clock` is injectable so tests can run leases out without sleeping.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._slots: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def held(self, key: str) -> int:
        """Slots of `key` whose lease has not run out."""
        with self._lock:
            return len(self._live(key, self._clock()))

    def _live(self, key: str, now: float) -> dict[str, float]:
        slots = self._slots.get(key)
        if slots is None:
            return {}
        expired = [token for token, until in slots.items() if until <= now]
        for token in expired:
            del slots[token]
        if not slots:
            del self._slots[key]
        return slots

    async def acquire(self, key: str, limit: int, lease: float) -> CapDecision:
        _check(limit, lease)
        with self._lock:
            now = self._clock()
            slots = self._live(key, now)
            if len(slots) >= limit:
                wait = min(slots.values()) - now if slots else 0.0
                return CapDecision(False, len(slots), retry_after=max(wait, 0.0))
            token = new_token()
            self._slots.setdefault(key, slots)[token] = now + lease
            return CapDecision(True, len(slots), CapToken(key, token))

    async def release(self, token: CapToken) -> bool:
        with self._lock:
            now = self._clock()
            slots = self._slots.get(token.key, {})
            until = slots.pop(token.token, None)
            self._live(token.key, now)
            return until is not None and until > now

    async def extend(self, token: CapToken, lease: float) -> bool:
        _check(1, lease)
        with self._lock:
            now = self._clock()
            slots = self._live(token.key, now)
            if token.token not in slots:
                return False
            slots[token.token] = now + lease
            return True


def _script(name: str) -> str:
    return resources.files("qaio.limits").joinpath(f"lua/{name}.lua").read_text(encoding="utf-8")


#: The scripts' sources, read once per process; the client caches their SHAs and loads them on first use.
SCRIPTS = {name: _script(f"cap_{name}") for name in ("acquire", "release", "extend")}


class RedisCap:
    """Slots in Redis, shared by every process using the same prefix: `{prefix}:{key}` is a zset of
    tokens scored by lease expiry on the server's clock (no client clock skew). Each operation is one
    Lua script call; a key vanishes once its last lease has run out. Works on Redis Cluster too (each
    script touches one key)."""

    def __init__(self, redis: Redis, *, prefix: str, lanes: Sequence[Lane] = ()) -> None:
        if not prefix:
            raise ConfigError("RedisCap needs a key prefix, so its keys cannot collide with others")
        self.redis = redis
        self.prefix = prefix
        self._lanes = lanes  #: the broker's script lanes, if any (see connection.Lane)
        # Imported here, not at the top: redis is an optional extra, and a RedisCap exists only with a client.
        from qaio.brokers.redis.connection import run_script

        self._run_script = run_script
        self._acquire: Any = redis.register_script(SCRIPTS["acquire"])
        self._release: Any = redis.register_script(SCRIPTS["release"])
        self._extend: Any = redis.register_script(SCRIPTS["extend"])

    def key(self, key: str) -> str:
        """The Redis key holding `key`'s slots."""
        return f"{self.prefix}:{key}"

    async def acquire(self, key: str, limit: int, lease: float) -> CapDecision:
        return (await self.acquire_many(key, limit, lease, 1))[0]

    async def acquire_many(self, key: str, limit: int, lease: float, count: int) -> list[CapDecision]:
        """`count` acquires in one script call, granted in order (for callers that coalesce requests)."""
        _check(limit, lease)
        tokens = [new_token() for _ in range(count)]
        granted, held, wait = await self._run_script(
            self._acquire, [self.key(key)], [limit, _ms(lease), *tokens], self._lanes
        )
        granted, held = int(granted), int(held)
        refused = CapDecision(False, held, retry_after=max(int(wait), 0) / 1000)
        return [
            CapDecision(True, held, CapToken(key, token)) if i < granted else refused for i, token in enumerate(tokens)
        ]

    async def release(self, token: CapToken) -> bool:
        return (await self.release_many(token.key, [token.token]))[0]

    async def release_many(self, key: str, tokens: Sequence[str]) -> list[bool]:
        """Give back several slots of one key in one script call."""
        if not tokens:
            return []
        return [
            bool(held) for held in await self._run_script(self._release, [self.key(key)], list(tokens), self._lanes)
        ]

    async def extend(self, token: CapToken, lease: float) -> bool:
        _check(1, lease)
        return bool(await self._run_script(self._extend, [self.key(token.key)], [token.token, _ms(lease)], self._lanes))

    async def held(self, key: str) -> int:
        """Slots of `key` whose lease has not run out (for tests and monitoring; not atomic with acquire)."""
        now_s, now_us = await self.redis.time()
        now = int(now_s) * 1000 + int(now_us) // 1000
        return int(await self.redis.zcount(self.key(key), f"({now}", "+inf"))


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
