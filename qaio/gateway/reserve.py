"""A few slots of a large cap taken ahead, so most requests are admitted without a round trip.

For a cap of hundreds or thousands the acquire's round trip is the only cost of admission; holding a
handful of slots ready changes nothing about the cap: they are real leases in the shared store, so
other gateways see them as held and the cap is never exceeded (it can only admit slightly fewer, by the
few idle slots each gateway holds, at most 1% of the cap). A request's slot goes back into the reserve
when it is done, so a steady stream of requests stops talking to the store about caps at all.

A slot is handed out only while at least half its lease is left, so the request renews it (every third
of a lease) long before it could expire; older ones are given back to the store, and idle ones expire
on their own within one lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from qaio.limits.caps import CapToken

if TYPE_CHECKING:
    from qaio.gateway.admission import Coalesced

log = logging.getLogger("qaio.gateway")

#: The most slots one gateway process holds ahead per cap key.
MAX_RESERVE = 16


def reserve_size(limit: int) -> int:
    """1% of the cap, at most MAX_RESERVE; caps under 100 get none and stay exact to the request."""
    return min(limit // 100, MAX_RESERVE)


class Reserve:
    """Slots of one cap key (with one limit and lease) held ahead by this process."""

    def __init__(self, store: Coalesced, key: str, limit: int, lease: float, size: int) -> None:
        self.store = store
        self.key = key
        self.limit = limit
        self.lease = lease
        self.size = size
        self._slots: list[tuple[CapToken, float]] = []  # (token, lease end on the monotonic clock)
        self._refill: asyncio.Task[None] | None = None

    def take(self) -> tuple[CapToken, float] | None:
        """A slot with at least half its lease left, or None (the caller asks the store); refills below half."""
        now = time.monotonic()
        found = None
        while self._slots:
            token, until = self._slots.pop()  # the freshest first, so old ones age out and go back
            if until - now >= self.lease / 2:
                found = (token, until)
                break
            self.store.release_later(token)
        if len(self._slots) < self.size // 2 + 1 and self._refill is None:
            self._refill = asyncio.get_running_loop().create_task(self._fill())
        return found

    def give(self, token: CapToken, until: float) -> bool:
        """Keep a slot a request is done with, if it is fresh enough and there is room; else False."""
        if len(self._slots) >= self.size or until - time.monotonic() < self.lease / 2:
            return False
        self._slots.append((token, until))
        return True

    async def _fill(self) -> None:
        try:
            want = self.size - len(self._slots)
            if want > 0:
                sent = time.monotonic()
                cap: Any = self.store.cap
                for decision in await cap.acquire_many(self.key, self.limit, self.lease, want):
                    if decision.token is not None:
                        self._slots.append((decision.token, sent + self.lease))
        except Exception:  # admission goes on through the store; the next take() tries again
            log.exception("could not reserve slots of cap %r", self.key)
        finally:
            self._refill = None

    async def aclose(self) -> None:
        if self._refill is not None:
            await asyncio.gather(self._refill, return_exceptions=True)
        slots, self._slots = self._slots, []
        cap: Any = self.store.cap
        if slots:
            await cap.release_many(self.key, [token.token for token, _ in slots])
