"""Admission control: a request takes a slot of its task's cap before anything is queued.

The cap store is shared when the backend can host one (Redis: every gateway process and machine
counts against one cap) and in-process otherwise. A slot is a lease: the request renews it while it
waits and releases it when its job is done; a gateway that dies frees its slots when their leases run out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from qaio.gateway.batching import Coalescer
from qaio.gateway.errors import Overloaded
from qaio.gateway.reserve import Reserve, reserve_size
from qaio.limits.caps import CapDecision, CapToken, ConcurrencyCap, LocalCap
from qaio.protocols import SharedCaps

log = logging.getLogger("qaio.gateway")


def shared_cap(backend: Any) -> ConcurrencyCap | None:
    """A cap store every process using `backend` shares (SharedCaps), or None when it has none."""
    return backend.concurrency_cap() if isinstance(backend, SharedCaps) else None


class Coalesced:
    """A cap store whose concurrent acquires (per key) and releases go out in batches, when it can batch
    (`acquire_many`/`release_many`, as RedisCap): one script call serves every request that arrived
    while the previous one was in flight. Large caps also keep a few slots in reserve (reserve.py)."""

    def __init__(self, cap: ConcurrencyCap) -> None:
        self.cap = cap
        self._batches = hasattr(cap, "acquire_many") and hasattr(cap, "release_many")
        self._acquirers: dict[tuple[str, int, float], Coalescer[None, CapDecision]] = {}
        self._releasers: dict[str, Coalescer[str, bool]] = {}
        self._reserves: dict[tuple[str, int, float], Reserve | None] = {}

    async def admit(self, key: str, limit: int, lease: float, retry_after: float) -> Slot:
        """A slot, or `Overloaded` (503) at once when `limit` are held."""
        reserve = self._reserve(key, limit, lease)
        if reserve is not None and (held := reserve.take()) is not None:
            return Slot(self, held[0], lease, held[1], reserve)
        sent = time.monotonic()
        decision = await self.acquire(key, limit, lease)
        if decision.token is None:
            wait = retry_after if decision.retry_after is None else min(retry_after, decision.retry_after)
            raise Overloaded(key, limit, wait)
        return Slot(self, decision.token, lease, sent + lease, reserve)

    def _reserve(self, key: str, limit: int, lease: float) -> Reserve | None:
        if not self._batches:
            return None
        spec = (key, limit, lease)
        if spec not in self._reserves:
            size = reserve_size(limit)
            self._reserves[spec] = Reserve(self, key, limit, lease, size) if size else None
        return self._reserves[spec]

    async def acquire(self, key: str, limit: int, lease: float) -> CapDecision:
        if not self._batches:
            return await self.cap.acquire(key, limit, lease)
        coalescer = self._acquirers.get((key, limit, lease))
        if coalescer is None:
            cap: Any = self.cap

            async def run(items: Sequence[None]) -> list[CapDecision]:
                decisions: list[CapDecision] = await cap.acquire_many(key, limit, lease, len(items))
                return decisions

            coalescer = self._acquirers[(key, limit, lease)] = Coalescer(run, orphan=self._undo)
        return await coalescer(None)

    async def _undo(self, decision: CapDecision) -> None:
        """A request cancelled while its slot was being taken: give the slot straight back."""
        if decision.token is not None:
            await self.release(decision.token)

    async def release(self, token: CapToken) -> bool:
        if not self._batches:
            return await self.cap.release(token)
        coalescer = self._releasers.get(token.key)
        if coalescer is None:
            cap: Any = self.cap
            key = token.key

            async def run(tokens: Sequence[str]) -> list[bool]:
                released: list[bool] = await cap.release_many(key, tokens)
                return released

            coalescer = self._releasers[key] = Coalescer(run)
        return await coalescer(token.token)

    def release_later(self, token: CapToken) -> None:
        """Give a slot back without waiting (a reserve's stale slot)."""
        task = asyncio.get_running_loop().create_task(self._release_quietly(token))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    async def _release_quietly(self, token: CapToken) -> None:
        try:
            await self.release(token)
        except Exception:  # its lease runs out by itself
            log.exception("could not release a cap slot of %r; it frees when its lease expires", token.key)

    async def extend(self, token: CapToken, lease: float) -> bool:
        return await self.cap.extend(token, lease)

    async def aclose(self) -> None:
        """Give the reserved slots back, so a restarted gateway does not leave them held for a lease."""
        for reserve in self._reserves.values():
            if reserve is not None:
                await reserve.aclose()


#: Fire-and-forget releases, referenced until done.
_pending: set[asyncio.Task[None]] = set()


class Slot:
    """One admitted request's place under its cap. Renewed while the request waits; released once
    (into its reserve when there is one and the slot is fresh enough, else to the store)."""

    __slots__ = ("cap", "lease", "released", "renew_at", "reserve", "token", "until")

    def __init__(self, cap: Coalesced, token: CapToken, lease: float, until: float, reserve: Reserve | None) -> None:
        self.cap = cap
        self.token = token
        self.lease = lease
        self.until = until  #: when the lease ends, on this process's monotonic clock (a lower bound)
        self.renew_at = until - lease * 2 / 3
        self.reserve = reserve
        self.released = False

    @property
    def step(self) -> float:
        """How long a waiter may wait between renewals."""
        return self.lease / 3

    def remaining(self) -> float:
        return max(self.until - time.monotonic(), 0.0)

    async def keep(self) -> None:
        """Renew the lease once a third of it has passed; a lost slot is logged, the request goes on."""
        now = time.monotonic()
        if self.released or now < self.renew_at:
            return
        if await self.cap.extend(self.token, self.lease):
            self.until, self.renew_at = now + self.lease, now + self.lease / 3
        else:
            self.renew_at = now + self.lease  # do not ask again every step
            log.warning("cap slot of %r expired while its request waited (gateway stalled?)", self.token.key)

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.reserve is not None and self.reserve.give(self.token, self.until):
            return
        try:
            await self.cap.release(self.token)
        except Exception:  # the lease will run out by itself
            log.exception("could not release a cap slot of %r; it frees when its lease expires", self.token.key)


class Admission:
    """Takes and gives back slots. `caps` overrides the store; by default one per backend (see above)."""

    def __init__(self, caps: ConcurrencyCap | None = None) -> None:
        self.caps = caps
        self._local = LocalCap()
        self._coalesced: WeakKeyDictionary[Any, Coalesced] = WeakKeyDictionary()

    def store(self, backend: Any) -> ConcurrencyCap:
        """The cap store requests through `backend` count against."""
        return self.coalesced(backend).cap

    def coalesced(self, backend: Any) -> Coalesced:
        found = self._coalesced.get(backend)
        if found is None:
            cap = self.caps if self.caps is not None else shared_cap(backend) or self._local
            found = self._coalesced[backend] = Coalesced(cap)
        return found

    async def admit(self, backend: Any, key: str, limit: int, lease: float, retry_after: float) -> Slot:
        """A slot, or `Overloaded` (503) at once when `limit` are held."""
        return await self.coalesced(backend).admit(key, limit, lease, retry_after)

    async def aclose(self) -> None:
        for coalesced in list(self._coalesced.values()):
            try:
                await coalesced.aclose()
            except Exception:  # their leases run out by themselves
                log.exception("could not give reserved cap slots back")
