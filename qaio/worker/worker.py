"""The worker loop: claim -> run -> settle, on any broker.

It holds at most `concurrency` jobs: it claims only as many as it has free slots (bounded prefetch),
so an idle worker never starves behind another's buffer. Outcomes are settled in batches by one
settler task, leases are renewed in one batched call per heartbeat, and expired leases of crashed
workers are reaped by every worker (idempotently).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qaio.app import App
from qaio.context import JobContext, _current, progress_sink
from qaio.errors import DecodeError
from qaio.message import Message, decode
from qaio.protocols import Action, Backend, Delivery, Settlement, WorkerInfo
from qaio.status import JobStatus
from qaio.worker import outcomes
from qaio.worker.executors import ProcessExecutor, ThreadExecutor, run_async
from qaio.worker.rates import TaskRates

log = logging.getLogger("qaio.worker")


@dataclass(slots=True)
class WorkerStats:
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    expired: int = 0
    cancelled: int = 0
    released: int = 0

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.retried + self.dead + self.expired + self.cancelled


_COUNTER = {
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.RETRYING: "retried",
    JobStatus.DEAD: "dead",
    JobStatus.EXPIRED: "expired",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.QUEUED: "released",
}


class Worker:
    """Runs an App's tasks. `await worker.run()` until `stop()`; `burst=True` returns once idle.

    Args:
        queues: queues to take jobs from (default: every queue the app's tasks use).
        concurrency: jobs run at once, and so the most it claims ahead.
        processes: size of the process pool for `cpu_bound` tasks (needs `app_ref`).
        max_level: take only jobs of this level or lower.
        grace: seconds in-flight jobs get to finish on shutdown before they are released.
        burst: exit once the queues are empty and nothing is running or scheduled.
        app_ref: "module:attr" of the app, so child processes can import it.
    """

    def __init__(
        self,
        app: App,
        *,
        queues: Sequence[str] | None = None,
        concurrency: int = 16,
        processes: int = 0,
        max_level: int = 9,
        grace: float = 30.0,
        burst: bool = False,
        app_ref: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if processes and not app_ref:
            raise ValueError("a process pool needs app_ref ('module:attr') so children can import the app")
        self.app = app
        self.queues = tuple(queues or sorted({t.options.queue for t in app.tasks.values()} or {"default"}))
        self.concurrency = concurrency
        self.max_level = max_level
        self.grace = grace
        self.burst = burst
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = WorkerStats()
        self._threads = ThreadExecutor(concurrency)
        self._processes = ProcessExecutor(processes, app_ref) if processes and app_ref else None
        self._running: dict[str, tuple[Delivery, asyncio.Task[None]]] = {}
        self._cancel_requested: set[str] = set()
        self._progress_writes: dict[str, asyncio.Task[None]] = {}
        self._outbox: list[Settlement] = []
        self._outbox_ready = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stopping = asyncio.Event()
        self._forced = asyncio.Event()
        self._closing = False  # every job has ended: the settler sends what is left, then returns
        self._started_at = time.time()

    # -- control --
    def stop(self) -> None:
        """The first call stops taking jobs and lets in-flight ones finish; the second forces."""
        if self._stopping.is_set():
            log.warning("forced shutdown: releasing %d in-flight job(s)", len(self._running))
            self._forced.set()
        else:
            log.info("shutting down: finishing %d in-flight job(s), %.0f s grace", len(self._running), self.grace)
            self._stopping.set()
        self._slot_free.set()

    async def run(self) -> WorkerStats:
        backend = await self.app.backend()
        loop = asyncio.get_running_loop()
        self._rates = TaskRates(backend)
        self._progress = progress_sink(loop, lambda job_id, p, m: self._write_progress(backend, job_id, p, m))
        await backend.register_worker(self._info(), ttl=30)
        settler = loop.create_task(self._settler(backend))
        heartbeat = loop.create_task(self._heartbeat(backend))
        log.info("worker %s consuming %s with concurrency %d", self.id, ",".join(self.queues), self.concurrency)
        try:
            await self._consume(backend)
            await self._drain()
        finally:
            await _cancel(heartbeat)
            self._stopping.set()
            self._closing = True
            self._outbox_ready.set()
            await settler
            await backend.unregister_worker(self.id)
            self._threads.shutdown()
            if self._processes is not None:
                self._processes.shutdown()
            log.info("worker %s stopped: %s", self.id, self.stats)
        return self.stats

    # -- the loop --
    async def _consume(self, backend: Backend) -> None:
        lease, pause = self.app.lease, 0.05
        while not self._stopping.is_set():
            free = self.concurrency - len(self._running)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                deliveries = await backend.claim(
                    self.queues,
                    limit=free,
                    lease=lease,
                    max_level=self.max_level,
                    wait=0.05 if self.burst else 1.0,
                )
                pause = 0.05
            except Exception:
                log.exception("claim failed; retrying in %.2f s", pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            if self._stopping.is_set():
                self._release(deliveries)
                break
            for delivery in deliveries:
                task = asyncio.get_running_loop().create_task(self._process(delivery))
                self._running[delivery.job_id] = (delivery, task)
            if not deliveries and self.burst and not self._running and await self._idle(backend):
                break

    async def _idle(self, backend: Backend) -> bool:
        """Burst mode's exit test: nothing ready, scheduled or leased in our queues, nothing to settle."""
        if self._outbox:
            return False
        stats = [s for s in await backend.queue_stats() if s.queue in self.queues]
        return not any(s.queued or s.scheduled or s.running for s in stats)

    async def _process(self, delivery: Delivery) -> None:
        try:
            settlement = await self._execute(delivery)
        except asyncio.CancelledError:  # shutdown past its grace: give the job back unfinished
            settlement = Settlement(delivery, Action.RELEASE)
        finally:
            del self._running[delivery.job_id]
            self._slot_free.set()
        progress = self._progress_writes.get(delivery.job_id)
        if progress is not None:
            await asyncio.wait((progress,))
        self._count(settlement)
        self._outbox.append(settlement)
        self._outbox_ready.set()

    async def _execute(self, delivery: Delivery) -> Settlement:
        app, worker = self.app, self.id
        try:
            message = decode(delivery.body, app.serializer)
        except DecodeError as exc:
            return outcomes.dead(delivery, None, worker, str(exc))
        task = app.tasks.get(message.task)
        if task is None:
            return outcomes.dead(delivery, message, worker, f"unknown task {message.task!r} (not in this app)")
        if delivery.deliveries > app.max_deliveries:
            reason = f"poison: delivered {delivery.deliveries} times without finishing (did it crash workers?)"
            return outcomes.dead(delivery, message, worker, reason)
        if message.expires_at is not None and time.time() > message.expires_at:
            return Settlement(
                delivery,
                Action.ACK,
                outcomes.state_of(message, JobStatus.EXPIRED, worker, error="expired before it could start"),
            )
        if task.options.rate_limit is not None:
            decision = await self._rates.admit(task)
            if not decision.accepted:  # postponed, not failed: the attempt is not used up
                return outcomes.postpone(delivery, message, worker, decision.retry_after or 1.0)
            if decision.delay:
                await asyncio.sleep(decision.delay)
        context = JobContext(message.id, message.task, message.attempt, message.queue, self._progress)
        token = _current.set(context)
        timeout = task.options.timeout
        try:
            if task.is_async:
                result = await run_async(task.fn, message.kwargs, timeout)
            elif task.options.cpu_bound and self._processes is not None:
                result = await self._processes.run(task.name, message.kwargs, timeout)
            else:
                result = await self._threads.run(task.fn, message.kwargs, timeout)
        except asyncio.CancelledError:
            if message.id not in self._cancel_requested:
                raise
            self._cancel_requested.discard(message.id)
            return Settlement(
                delivery,
                Action.ACK,
                outcomes.state_of(message, JobStatus.CANCELLED, worker, error="cancelled while running"),
            )
        except Exception as exc:
            return outcomes.failure(delivery, message, task, exc, worker, app.serializer)
        finally:
            _current.reset(token)
        return self._success(delivery, message, result)

    def _success(self, delivery: Delivery, message: Message, result: object) -> Settlement:
        state = outcomes.state_of(message, JobStatus.SUCCEEDED, self.id)
        if result is None:
            return Settlement(delivery, Action.ACK, state)
        try:
            return Settlement(delivery, Action.ACK, state, result=self.app.serializer.dumps(result))
        except Exception as exc:  # any codec error (msgpack: OverflowError): else no outcome is settled
            state.status, state.error = JobStatus.FAILED, f"result cannot be serialised: {exc}"
            return Settlement(delivery, Action.ACK, state)

    def _count(self, settlement: Settlement) -> None:
        status = settlement.state.status if settlement.state is not None else JobStatus.QUEUED
        name = _COUNTER.get(status)
        if name:
            setattr(self.stats, name, getattr(self.stats, name) + 1)
        if status is not JobStatus.SUCCEEDED and settlement.state is not None:
            level = logging.ERROR if status is JobStatus.DEAD else logging.WARNING
            log.log(
                level,
                "job %s %s: %s",
                settlement.delivery.job_id,
                status.value,
                settlement.state.error,
                extra={"job_id": settlement.delivery.job_id, "status": status.value},
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("job %s %s", settlement.delivery.job_id, status.value)

    def _release(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._outbox.append(Settlement(delivery, Action.RELEASE))
            self.stats.released += 1
        self._outbox_ready.set()

    async def _drain(self) -> None:
        """Wait for in-flight jobs up to the grace period (or a second signal), then release the rest."""
        if not self._running:
            return
        running = [task for _, task in self._running.values()]
        forced = asyncio.get_running_loop().create_task(self._forced.wait())
        await self._wait_or_force(running, forced)
        forced.cancel()
        leftovers = [task for _, task in self._running.values()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    async def _wait_or_force(self, running: list[asyncio.Task[None]], forced: asyncio.Task[bool]) -> None:
        deadline = time.monotonic() + self.grace
        pending: set[asyncio.Future[Any]] = set(running)
        while pending and not forced.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            _, pending = await asyncio.wait([*pending, forced], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(forced)

    # -- background tasks --
    async def _settler(self, backend: Backend) -> None:
        """Sends outcomes in batches: whatever piled up while the previous batch was in flight."""
        pause = 0.05
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            if self._outbox:
                batch, self._outbox = self._outbox, []
                try:
                    await backend.settle(batch)
                    pause = 0.05
                except Exception:
                    # Keep the outcomes and try again: if the broker stays away, leases expire and the
                    # jobs run again elsewhere (at-least-once), never lost.
                    log.exception("settling %d job(s) failed; retrying in %.2f s", len(batch), pause)
                    self._outbox[:0] = batch
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 5.0)
                    self._outbox_ready.set()
                    continue
            if self._closing and not self._outbox and not self._running:  # after a batch too: its wake-up may be spent
                return

    async def _heartbeat(self, backend: Backend) -> None:
        """Renew leases in one batch, stop cancelled jobs, reap crashed workers' jobs, say we are alive."""
        lease = self.app.lease
        interval = min(lease / 3, 2.0)
        last_reap = last_register = 0.0
        last_processed = 0
        while True:
            await asyncio.sleep(interval)
            try:
                running = list(self._running.values())
                if running:
                    kept = await backend.extend([delivery for delivery, _ in running], lease)
                    for (delivery, task), ok in zip(running, kept, strict=True):
                        if not ok and not task.done():
                            self._cancel_requested.add(delivery.job_id)
                            task.cancel()
                now = time.monotonic()
                if now - last_reap >= lease / 2:
                    last_reap = now
                    if returned := await backend.reap():
                        log.warning("returned %d job(s) with expired leases to their queues", returned)
                if now - last_register >= 10:
                    if last_register and (done := self.stats.processed - last_processed):
                        rate = done / (now - last_register)
                        log.info("processed %d job(s), %.0f/s; %d in flight", done, rate, len(self._running))
                    last_register, last_processed = now, self.stats.processed
                    await backend.register_worker(self._info(), ttl=30)
            except Exception:
                log.exception("heartbeat failed")

    def _write_progress(self, backend: Backend, job_id: str, progress: float, message: str | None) -> None:
        """Send a progress report without waiting for it. A job's reports go out in order, and its
        settlement waits for the last one (a report that lands after the job has finished is refused)."""
        previous = self._progress_writes.get(job_id)

        async def write() -> None:
            if previous is not None:
                await asyncio.wait((previous,))
            try:
                await backend.set_progress(job_id, progress, message)
            except Exception:
                log.exception("progress of job %s not stored", job_id)

        task = asyncio.get_running_loop().create_task(write())
        self._progress_writes[job_id] = task
        task.add_done_callback(lambda done: self._forget_progress(job_id, done))

    def _forget_progress(self, job_id: str, done: asyncio.Task[None]) -> None:
        if self._progress_writes.get(job_id) is done:
            del self._progress_writes[job_id]

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            self.id,
            socket.gethostname(),
            os.getpid(),
            self.queues,
            self.concurrency,
            self._started_at,
            time.time(),
            self.stats.processed,
        )


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel and wait. Re-cancels: on Python < 3.12 `wait_for` can swallow a cancellation that lands
    just as the call it wraps completes, which would leave the task running forever."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
