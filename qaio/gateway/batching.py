"""Coalescing: the calls that arrive while one batch is in flight go out together as the next batch.

Under load many requests want the same round trip at once (take a cap slot, enqueue a job, give a slot
back); sending them as one script call or one enqueue of N jobs costs about as much as one. An idle
coalescer sends a call at once, so a lone request waits for nothing; a busy one batches as much as
piled up meanwhile, like the worker's settler. One batch is in flight at a time per coalescer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")

log = logging.getLogger("qaio.gateway")


class Coalescer(Generic[T, U]):
    """`await coalescer(item)` -> `run(items)[i]` for the batch `item` went out in.

    `run` gets the items in arrival order and returns one result per item; if it raises, every caller
    of that batch gets the exception. A caller cancelled before its batch went out is left out of it;
    one cancelled while it was in flight has its result passed to `orphan` (to undo what it did).
    """

    __slots__ = ("_busy", "_pending", "_task", "max_batch", "orphan", "run")

    def __init__(
        self,
        run: Callable[[Sequence[T]], Awaitable[Sequence[U]]],
        *,
        orphan: Callable[[U], Awaitable[object]] | None = None,
        max_batch: int = 512,
    ) -> None:
        self.run = run
        self.orphan = orphan
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[U]]] = []
        self._busy = False
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> U:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[U] = loop.create_future()
        self._pending.append((item, future))
        if not self._busy:
            self._busy = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = [entry for entry in self._pending[: self.max_batch] if not entry[1].done()]
                del self._pending[: self.max_batch]
                if batch:
                    await self._send(batch)
        finally:
            self._busy = False

    async def _send(self, batch: list[tuple[T, asyncio.Future[U]]]) -> None:
        try:
            results = await self.run([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
            elif self.orphan is not None:
                try:
                    await self.orphan(result)
                except Exception:
                    log.exception("could not undo the batched call of a cancelled request")
