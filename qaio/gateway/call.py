"""Request-reply from a route: `result = await gateway.call(prime_check, n=n)`.

The gateway admits the request under its task's cap (503 at once when full), enqueues one job, waits
for a worker to claim it (withdrawn with 503 if none does in time), then for its result (504 when it
runs too long; 500 with an error id when the task raised). The slot is released when the job is done.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Generic, ParamSpec, TypeVar, cast
from weakref import WeakKeyDictionary

from qaio.app import App
from qaio.errors import EnqueueError, QaioError
from qaio.gateway.admission import Admission, Slot
from qaio.gateway.batching import Coalescer
from qaio.gateway.errors import GatewayError, InternalError, RunTimeout, Unavailable
from qaio.gateway.policy import Policy
from qaio.job import Job
from qaio.limits.caps import ConcurrencyCap
from qaio.message import Message
from qaio.protocols import Backend, Forgets, JobState
from qaio.status import JobStatus
from qaio.task import BoundCall, CallOptions, Task

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=Coalescer[Any, Any])

log = logging.getLogger("qaio.gateway")


class Gateway:
    """Runs tasks of a qaio `App` on its workers for FastAPI routes, with admission control.

    Args:
        app: the qaio App whose workers run the tasks.
        caps: where caps are counted. Default: on the backend when it can share them (Redis: one cap for
            every gateway process and machine), else in this process.
        **defaults: `Policy` fields every task starts from (cap, timeout, confirm_timeout, ...).
    """

    def __init__(self, app: App, *, caps: ConcurrencyCap | None = None, **defaults: Any) -> None:
        self.app = app
        self.defaults = Policy().replace(**defaults)
        self.admission = Admission(caps)
        self._policies: dict[str, tuple[Policy, BoundCall[Any, Any]]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._enqueuers: WeakKeyDictionary[asyncio.AbstractEventLoop, Coalescer[Message, Job[Any] | Exception]]
        self._enqueuers = WeakKeyDictionary()
        self._forgetters: WeakKeyDictionary[asyncio.AbstractEventLoop, Coalescer[str, None]] = WeakKeyDictionary()

    # -- configuration --
    def policy(self, task: Task[Any, Any], **changes: Any) -> Policy:
        """Set (with `changes`) and return the task's policy: `gateway.policy(prime_check, cap=320)`."""
        current = self._policies.get(task.name)
        policy = (current[0] if current else self.defaults).replace(**changes)
        call = CallOptions(**policy.call_options())
        call.check()
        self._policies[task.name] = (policy, BoundCall(task, call))
        return policy

    def _policy(self, task: Task[Any, Any]) -> tuple[Policy, BoundCall[Any, Any]]:
        found = self._policies.get(task.name)
        if found is None or found[1].task is not task:
            self.policy(task)
            found = self._policies[task.name]
        return found

    # -- request-reply --
    async def call(self, task: Task[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `task` on a worker and return its result, or raise the HTTP answer (503, 504, 500)."""
        policy, bound = self._policy(task)
        backend = await self.app.backend()
        slot = await self._admit(backend, task, policy)
        return cast(R, await self._run(backend, policy, bound, slot, args, kwargs))

    def admit(self, task: Task[P, R]) -> Callable[[], AsyncIterator[Admitted[P, R]]]:
        """A FastAPI dependency: the request is admitted (or answered 503) before the route body runs.

        `async def fib(n: int, run: Annotated[Admitted[[int], int], Depends(gateway.admit(fibonacci))])`
        then `return await run(n=n)`. The slot is released when the dependency exits if `run` was not called.
        """

        async def admitted() -> AsyncIterator[Admitted[P, R]]:
            policy, bound = self._policy(task)
            backend = await self.app.backend()
            slot = await self._admit(backend, task, policy)
            handle: Admitted[P, R] = Admitted(self, backend, policy, bound, slot)
            try:
                yield handle
            finally:
                if slot is not None and not handle.used:
                    await slot.release()

        admitted.__name__ = f"admit_{task.fn.__name__}"
        return admitted

    async def _admit(self, backend: Backend, task: Task[Any, Any], policy: Policy) -> Slot | None:
        if policy.cap is None:
            return None
        try:
            return await self.admission.admit(
                backend, policy.key or task.name, policy.cap, policy.lease, policy.retry_after
            )
        except GatewayError:
            raise
        except Exception as exc:
            raise self._internal(exc, task.name, None) from None

    async def _run(
        self,
        backend: Backend,
        policy: Policy,
        bound: BoundCall[Any, Any],
        slot: Slot | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Enqueue, wait, map the outcome. Owns `slot`: released here, or handed to a background hold."""
        task = bound.task
        job_id: str | None = None
        held = False
        try:
            message = bound.message(task.bind(args, kwargs))
            enqueued = await self._enqueuer()(message)
            if isinstance(enqueued, Exception):
                raise enqueued
            job_id = message.id
            state = await self._wait(backend, job_id, policy, slot, task.options.timeout)
        except RunTimeout:
            held = self._abandon(backend, job_id, policy, slot)
            raise
        except asyncio.CancelledError:  # the client went away or the server is stopping
            held = job_id is not None and self._abandon(backend, job_id, policy, slot)
            raise
        except GatewayError:
            raise
        except Exception as exc:
            raise self._internal(exc, task.name, job_id) from None
        finally:
            if slot is not None and not held:
                self._spawn(slot.release())  # off the response's path; the cap counts it until then
        succeeded = state is not None and state.status is JobStatus.SUCCEEDED
        if succeeded and not policy.keep_results and isinstance(backend, Forgets):
            self._spawn(self._forget(backend, job_id))
        return self._outcome(state, job_id, task.name, policy)

    async def _forget(self, backend: Forgets, job_id: str) -> None:
        """Delete an answered job, in a batch with those of the requests answered meanwhile."""
        try:
            await _this_loops(self._forgetters, lambda: Coalescer(partial(_forget_batch, backend)))(job_id)
        except Exception:  # it expires with the result TTL instead
            log.warning("could not delete answered job %s; it expires with the result TTL", job_id, exc_info=True)

    def _enqueuer(self) -> Coalescer[Message, Job[Any] | Exception]:
        """This loop's enqueue coalescer: the jobs of requests that arrive together go in one write."""
        return _this_loops(self._enqueuers, lambda: Coalescer(self._enqueue_batch, orphan=self._withdraw))

    async def _enqueue_batch(self, messages: Sequence[Message]) -> list[Job[Any] | Exception]:
        try:
            return list(await self.app.aenqueue_messages(messages))
        except EnqueueError:
            if len(messages) == 1:
                raise
        outcomes: list[Job[Any] | Exception] = []  # one bad message must not fail the others
        for message in messages:
            try:
                outcomes.extend(await self.app.aenqueue_messages([message]))
            except EnqueueError as exc:
                outcomes.append(exc)
        return outcomes

    async def _withdraw(self, enqueued: Job[Any] | Exception) -> None:
        """The request was cancelled while its job was being written: withdraw the job."""
        if isinstance(enqueued, Job):
            await enqueued.acancel()

    async def _wait(
        self, backend: Backend, job_id: str, policy: Policy, slot: Slot | None, task_timeout: float | None
    ) -> JobState | None:
        """Wait for the job to finish: withdrawn (503) if no worker claimed it within the confirm timeout,
        504 once it ran longer than the run timeout. The store pushes only a job's end, so the wait
        wakes up at the next moment one of those could have happened (and to renew the slot)."""
        step = slot.step if slot is not None else float("inf")
        timeout = policy.run_timeout(task_timeout)
        start = time.monotonic()
        confirm_at = start + policy.confirm_timeout
        run_until = start + timeout  # the earliest it can be, if a worker claims the job at once
        claimed = False
        while True:
            now = time.monotonic()
            wake = min(now + step, run_until) if claimed else min(now + step, run_until, confirm_at)
            state = await backend.wait_state(job_id, timeout=max(wake - time.monotonic(), 0.0))
            if state is None or state.status.finished:
                return state
            now = time.monotonic()
            if not claimed and state.status is not JobStatus.QUEUED:
                claimed = True
                if state.started_at is not None:  # the worker's wall clock: trust it within what we saw
                    ran = min(max(time.time() - state.started_at, 0.0), now - start)
                    run_until = now + timeout - ran
            if not claimed and now >= confirm_at:
                if await backend.cancel(job_id, running=False):
                    log.warning("job %s withdrawn: no worker claimed it in %g s", job_id, policy.confirm_timeout)
                    raise Unavailable("no worker took the job in time", job_id, policy.retry_after)
                claimed, run_until = True, now + timeout  # a worker took it meanwhile: keep waiting
            if claimed and now >= run_until:
                log.warning("job %s timed out: still %s after %g s", job_id, state.status.value, timeout)
                raise RunTimeout(job_id, timeout)
            if slot is not None:
                await slot.keep()

    def _outcome(self, state: JobState | None, job_id: str, task: str, policy: Policy) -> Any:
        if state is None:
            log.warning("job %s of %s lost: its state is gone (purged, or expired)", job_id, task)
            raise Unavailable("the job was lost (purged, or its state expired)", job_id, policy.retry_after)
        status = state.status
        if status is JobStatus.SUCCEEDED:
            return state.result
        if status in (JobStatus.CANCELLED, JobStatus.EXPIRED):
            log.warning("job %s of %s %s before it finished: %s", job_id, task, status.value, state.error)
            raise Unavailable(f"the job was {status.value} before it finished", job_id, policy.retry_after)
        error_id = secrets.token_hex(8)
        log.error(
            "error %s: job %s of %s %s: %s\n%s",
            error_id,
            job_id,
            task,
            status.value,
            state.error,
            state.traceback or "(no traceback)",
            extra={"error_id": error_id, "job_id": job_id, "task": task},
        )
        raise InternalError(error_id, job_id)

    def _internal(self, exc: BaseException, task: str, job_id: str | None) -> InternalError:
        error_id = secrets.token_hex(8)
        kind = "enqueue" if isinstance(exc, QaioError) else "gateway"
        log.error(
            "error %s: %s failure for %s (job %s)",
            error_id,
            kind,
            task,
            job_id,
            exc_info=exc,
            extra={"error_id": error_id, "job_id": job_id, "task": task},
        )
        return InternalError(error_id, job_id)

    # -- abandoned jobs --
    def _abandon(self, backend: Backend, job_id: str | None, policy: Policy, slot: Slot | None) -> bool:
        """Nobody waits for the job any more: cancel it (if the policy says so) and keep its slot until
        it has stopped or the lease runs out, so the cap keeps counting it. True if the slot was taken over."""
        if job_id is None or (slot is None and not policy.cancel_abandoned):
            return False
        self._spawn(self._hold(backend, job_id, policy, slot))
        return slot is not None

    async def _hold(self, backend: Backend, job_id: str, policy: Policy, slot: Slot | None) -> None:
        try:
            if policy.cancel_abandoned:
                await backend.cancel(job_id)
            if slot is not None:
                await backend.wait_state(job_id, timeout=slot.remaining())
        except Exception:
            log.exception("could not cancel abandoned job %s", job_id)
        finally:
            if slot is not None:
                await slot.release()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- lifecycle --
    @asynccontextmanager
    async def lifespan(self, api: object = None) -> AsyncIterator[None]:
        """`FastAPI(lifespan=gateway.lifespan)`: connect at start-up, release everything at shutdown."""
        await self.app.backend()
        try:
            yield
        finally:
            await self.aclose()

    async def join(self, timeout: float | None = None) -> bool:
        """Wait until the work left behind by answered requests is done (slot releases, held slots of
        abandoned jobs); False if some is still going after `timeout` seconds."""
        while self._background:
            _, pending = await asyncio.wait(set(self._background), timeout=timeout)
            if pending:
                return False
        return True

    async def aclose(self, *, grace: float = 2.0) -> None:
        """Let held slots finish for up to `grace` seconds, then close the app's backend."""
        if not await self.join(grace):
            pending = list(self._background)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.admission.aclose()
        await self.app.aclose()


class Admitted(Generic[P, R]):
    """A request admitted under its task's cap (see `Gateway.admit`): call it once to run the job."""

    __slots__ = ("_backend", "_bound", "_gateway", "_policy", "_slot", "used")

    def __init__(
        self, gateway: Gateway, backend: Backend, policy: Policy, bound: BoundCall[P, R], slot: Slot | None
    ) -> None:
        self._gateway = gateway
        self._backend = backend
        self._policy = policy
        self._bound = bound
        self._slot = slot
        self.used = False

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.used:
            raise RuntimeError("an admission runs one job; take another (a second Depends) for more")
        self.used = True
        result = await self._gateway._run(self._backend, self._policy, self._bound, self._slot, args, kwargs)
        return cast(R, result)


def _this_loops(coalescers: WeakKeyDictionary[asyncio.AbstractEventLoop, C], make: Callable[[], C]) -> C:
    """The running loop's coalescer from `coalescers`, made on first use (a backend belongs to one loop)."""
    loop = asyncio.get_running_loop()
    found = coalescers.get(loop)
    if found is None:
        found = coalescers[loop] = make()
    return found


async def _forget_batch(backend: Forgets, job_ids: Sequence[str]) -> list[None]:
    await backend.forget(job_ids)
    return [None] * len(job_ids)
