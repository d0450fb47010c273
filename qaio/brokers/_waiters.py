"""Futures that can be woken from any thread or event loop, for the in-process brokers."""

from __future__ import annotations

import asyncio
import contextlib


class Waiters:
    """Waiters parked on one condition; `wake_all` resolves them, thread-safe and loop-safe."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] = []

    def add(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.append(future)
        return future

    def discard(self, future: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._futures.remove(future)

    def wake_all(self) -> None:
        if not self._futures:
            return
        futures, self._futures = self._futures, []
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for future in futures:
            loop = future.get_loop()
            if loop is current:
                _resolve(future)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def park(future: asyncio.Future[None], timeout: float) -> None:
    """Wait for a wake-up or the timeout, whichever comes first."""
    if timeout <= 0:
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(future, timeout)
