"""App: one URL, its backend, the task registry and the defaults. No module globals."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar, overload

from qaio._sync import Portal
from qaio.brokers import open_backend, redacted
from qaio.errors import ConfigError, EnqueueError
from qaio.job import Job
from qaio.message import Message, encode
from qaio.options import Backoff, TaskOptions
from qaio.protocols import Backend, BlockingEnqueue, Enqueued
from qaio.serializers import Serializer, get_serializer
from qaio.task import Task, to_enqueued

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_URL = "sqlite:///qaio.db"


class App:
    """The entry point: `App()` is the embedded SQLite default; `App("redis://...")` for production.

    Args:
        url: the broker, `memory://`, `sqlite:///path.db` or `redis://host:port/db`.
        serializer: envelope codec by name (`json`, `msgpack`, a registered one) or instance.
        allow_pickle: permit the pickle serializer; only for brokers nobody untrusted can write to.
        result_ttl: seconds a finished job's state and result are kept.
        lease: seconds a worker holds a job between heartbeats; a crashed worker's jobs return after it.
        max_deliveries: deliveries without an outcome after which a job counts as poison (dead).
        defaults: task options every task starts from (queue, retries, timeout, ...).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        serializer: str | Serializer = "json",
        allow_pickle: bool = False,
        result_ttl: float = 3600.0,
        lease: float = 15.0,
        max_deliveries: int = 5,
        defaults: dict[str, Any] | None = None,
    ) -> None:
        if not lease > 0 or not result_ttl > 0 or max_deliveries < 1:
            raise ConfigError("lease and result_ttl must be positive and max_deliveries at least 1")
        self.url = url
        self.serializer = get_serializer(serializer, allow_pickle=allow_pickle)
        self.result_ttl = result_ttl
        self.lease = lease
        self.max_deliveries = max_deliveries
        self.defaults = TaskOptions().merged(defaults or {})
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.portal = Portal()
        self._backends: dict[asyncio.AbstractEventLoop, Backend] = {}
        self._backends_lock = threading.Lock()
        self._shared: Backend | None = None
        #: How synchronous code enqueues: set on first use (see enqueue_messages)
        self._sync_enqueue: Callable[[Sequence[Enqueued]], list[bool]] | None = None
        open_backend(url, serializer=self.serializer, result_ttl=result_ttl)  # fail fast on a bad URL

    def __repr__(self) -> str:
        return f"<App {redacted(self.url)} tasks={len(self.tasks)}>"

    # -- declaring tasks --
    @overload
    def task(self, fn: Callable[P, Awaitable[R]], /) -> Task[P, R]: ...

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        level: int | None = None,
        retries: int | None = None,
        backoff: float | Backoff | None = None,
        timeout: float | None = None,
        ttl: float | None = None,
        cpu_bound: bool | None = None,
        rate_limit: str | None = None,
    ) -> _TaskDecorator: ...

    def task(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None, **options: Any) -> Any:
        """Register a sync or async function as a task; options as in `TaskOptions`."""
        merged = self.defaults.merged(options)

        def register(fn: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or f"{fn.__module__}.{fn.__qualname__}"
            if task_name in self.tasks and self.tasks[task_name].fn is not fn:
                raise ConfigError(f"two tasks are named {task_name!r}; pass name= to tell them apart")
            task: Task[Any, Any] = Task(self, fn, task_name, merged)
            self.tasks[task_name] = task
            return task

        return register if fn is None else register(fn)

    # -- the backend --
    async def backend(self) -> Backend:
        """This loop's backend, connected. In-process backends are shared; network clients are per loop."""
        if self._shared is not None:
            return self._shared
        loop = asyncio.get_running_loop()
        backend = self._backends.get(loop)
        if backend is None:
            with self._backends_lock:
                backend = open_backend(self.url, serializer=self.serializer, result_ttl=self.result_ttl)
                if not getattr(backend, "loop_bound", False):
                    if self._shared is None:
                        self._shared = backend
                    backend = self._shared
                else:
                    self._backends[loop] = backend
            await backend.connect()
        return backend

    async def aenqueue_messages(self, messages: Sequence[Message], *, fresh_ids: bool = False) -> list[Job[Any]]:
        """Encode every message first (so a bad one writes nothing), then write them in one call.
        `fresh_ids`: as for `enqueue_messages`."""
        batch = self._encode(messages, fresh_ids=fresh_ids)
        created = await (await self.backend()).enqueue(batch)
        return [Job(self, message.id, created=ok) for message, ok in zip(messages, created, strict=True)]

    def enqueue_messages(self, messages: Sequence[Message], *, fresh_ids: bool = False) -> list[Job[Any]]:
        """`aenqueue_messages` for synchronous code: from the calling thread where the broker can
        (BlockingEnqueue), else on the portal's loop. `fresh_ids`: the ids were made by `new_id` or `new_ids` for
        these messages, so none can be taken (Enqueued.fresh_id)."""
        batch = self._encode(messages, fresh_ids=fresh_ids)
        created = (self._sync_enqueue or self._find_sync_enqueue())(batch)
        return [Job(self, message.id, created=ok) for message, ok in zip(messages, created, strict=True)]

    def _encode(self, messages: Sequence[Message], *, fresh_ids: bool = False) -> list[Enqueued]:
        serializer = self.serializer
        try:
            return [to_enqueued(message, encode(message, serializer), fresh_ids=fresh_ids) for message in messages]
        except EnqueueError:
            raise
        except Exception as exc:
            raise EnqueueError(f"cannot serialise job arguments: {exc}") from exc

    def _find_sync_enqueue(self) -> Callable[[Sequence[Enqueued]], list[bool]]:
        backend = self.portal.call(self.backend())
        blocking = backend.blocking_enqueue() if isinstance(backend, BlockingEnqueue) else None
        self._sync_enqueue = blocking or self._enqueue_on_portal
        return self._sync_enqueue

    def _enqueue_on_portal(self, batch: Sequence[Enqueued]) -> list[bool]:
        async def write() -> list[bool]:
            return await (await self.backend()).enqueue(batch)

        return self.portal.call(write())

    def job(self, job_id: str) -> Job[Any]:
        """A handle on an existing job, by id."""
        return Job(self, job_id)

    async def aclose(self) -> None:
        self._sync_enqueue = None
        with self._backends_lock:
            backends = list(self._backends.values())
            self._backends.clear()
            if self._shared is not None:
                backends.append(self._shared)
                self._shared = None
        for backend in backends:
            await backend.close()

    def close(self) -> None:
        self.portal.call(self.aclose())
        self.portal.close()


class _TaskDecorator:
    """The type of `app.task(...)` with options: a decorator that keeps the function's signature."""

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    def __call__(self, fn: Callable[..., Any], /) -> Any: ...
