"""The typed task handle that `@app.task` returns, and the per-call options builder."""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from qaio.errors import ConfigError, EnqueueError
from qaio.message import Message
from qaio.options import TaskOptions, check_range
from qaio.protocols import Enqueued

if TYPE_CHECKING:
    from qaio.app import App
    from qaio.job import Job

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Options of one enqueue, kept apart from the task's kwargs so any parameter name works."""

    job_id: str | None = None
    queue: str | None = None
    priority: int | None = None
    level: int | None = None
    delay: float | None = None
    eta: float | datetime | None = None
    ttl: float | None = None

    def check(self) -> None:
        for name in ("priority", "level"):
            value = getattr(self, name)
            if value is not None:
                check_range(name, value)
        if self.delay is not None and not 0 <= self.delay < math.inf:  # NaN, inf: JSON would carry a null eta
            raise ConfigError(f"delay must be finite seconds >= 0, got {self.delay}")
        if self.eta is not None and not isinstance(self.eta, datetime) and not math.isfinite(self.eta):
            raise ConfigError(f"eta must be a finite Unix time or a datetime, got {self.eta}")
        if self.delay is not None and self.eta is not None:
            raise ConfigError("give delay or eta, not both")
        if self.ttl is not None and not 0 < self.ttl < math.inf:
            raise ConfigError(f"ttl must be finite positive seconds, got {self.ttl}")
        if self.job_id is not None and (not isinstance(self.job_id, str) or not self.job_id):
            raise ConfigError(f"job_id must be a non-empty string, got {self.job_id!r}")


#: The options of a call that sets none (frozen, so one instance serves every such call).
NO_OPTIONS = CallOptions()


class Task(Generic[P, R]):
    """A function registered with an App. Call it to run it here; enqueue it to run it on a worker."""

    def __init__(self, app: App, fn: Callable[..., Any], name: str, options: TaskOptions) -> None:
        signature = inspect.signature(fn)
        for param in signature.parameters.values():
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                raise ConfigError(f"task {name}: positional-only parameter {param.name!r}; jobs pass kwargs")
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self._signature = signature
        named = [
            p for p in signature.parameters.values() if p.kind is not p.VAR_POSITIONAL and p.kind is not p.VAR_KEYWORD
        ]
        #: For calls by keyword to a function without *args/**kwargs, binding is two set checks.
        self._plain = len(named) == len(signature.parameters)
        self._names = frozenset(p.name for p in named)
        self._required = frozenset(p.name for p in named if p.default is p.empty)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self.fn(*args, **kwargs)

    def with_options(self, **options: Any) -> BoundCall[P, R]:
        """Per-call options: job_id, queue, priority, level, delay, eta, ttl."""
        try:
            call = CallOptions(**options)
        except TypeError as exc:
            raise ConfigError(f"{exc}; call options are {', '.join(CallOptions.__slots__)}") from None
        call.check()
        return BoundCall(self, call)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        return BoundCall(self, NO_OPTIONS).enqueue(*args, **kwargs)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        return await BoundCall(self, NO_OPTIONS).aenqueue(*args, **kwargs)

    def enqueue_many(self, calls: Iterable[Mapping[str, Any]]) -> list[Job[R]]:
        """Enqueue one job per kwargs mapping in one broker round trip."""
        return self.app.enqueue_messages(self._messages(calls), fresh_ids=True)

    async def aenqueue_many(self, calls: Iterable[Mapping[str, Any]]) -> list[Job[R]]:
        return await self.app.aenqueue_messages(self._messages(calls), fresh_ids=True)

    def _messages(self, calls: Iterable[Mapping[str, Any]]) -> list[Message]:
        return BoundCall(self, NO_OPTIONS).messages([self.bind((), dict(kw)) for kw in calls])

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Turn a call into the job's kwargs, failing on unknown or missing parameters."""
        if not args and self._plain and self._required <= kwargs.keys() <= self._names:
            return kwargs
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise EnqueueError(f"{self.name}: {exc}") from None
        return dict(bound.arguments)


class BoundCall(Generic[P, R]):
    """A task with per-call options, ready to enqueue."""

    __slots__ = ("call", "task")

    def __init__(self, task: Task[P, R], call: CallOptions) -> None:
        self.task = task
        self.call = call

    def message(self, kwargs: dict[str, Any]) -> Message:
        return Message(self.call.job_id or new_id(), self.task.name, kwargs, *self._shared())

    def messages(self, calls: Sequence[dict[str, Any]]) -> list[Message]:
        """One message per call's bound kwargs; the options, the clock and the OS's random source are
        read once for all."""
        name, shared, job_id = self.task.name, self._shared(), self.call.job_id
        ids = [job_id] * len(calls) if job_id else new_ids(len(calls))
        return [Message(message_id, name, kwargs, *shared) for message_id, kwargs in zip(ids, calls, strict=True)]

    def _shared(self) -> tuple[str, int, int, int, float, float, float | None]:
        """The fields after kwargs that all messages of this call share: queue, priority, level,
        attempt, enqueued_at, eta, expires_at."""
        options, call = self.task.options, self.call
        now = time.time()
        if call.eta is not None:
            eta = call.eta.timestamp() if isinstance(call.eta, datetime) else float(call.eta)
        else:
            eta = now + call.delay if call.delay else 0.0
        ttl = call.ttl or options.ttl
        expires_at = None if ttl is None else max(eta, now) + ttl
        priority = options.priority if call.priority is None else call.priority
        level = options.level if call.level is None else call.level
        return call.queue or options.queue, priority, level, 1, now, eta, expires_at

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        message = self.message(self.task.bind(args, kwargs))
        return self.task.app.enqueue_messages([message], fresh_ids=self.call.job_id is None)[0]

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        message = self.message(self.task.bind(args, kwargs))
        return (await self.task.app.aenqueue_messages([message], fresh_ids=self.call.job_id is None))[0]


def new_id() -> str:
    """An unguessable job id: 32 hex digits, like uuid4().hex."""
    return os.urandom(16).hex()


def new_ids(count: int) -> list[str]:
    """`count` unguessable job ids, 32 hex digits each like uuid4().hex, from one read of os.urandom."""
    digits = os.urandom(16 * count).hex()
    return [digits[i : i + 32] for i in range(0, 32 * count, 32)]


def to_enqueued(message: Message, body: bytes, *, fresh_ids: bool = False) -> Enqueued:
    return Enqueued(
        message.id,
        body,
        message.queue,
        message.task,
        message.priority,
        message.level,
        message.eta,
        message.enqueued_at,
        fresh_ids,
    )
