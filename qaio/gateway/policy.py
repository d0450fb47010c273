"""How a gateway runs one task: its cap, its timeouts, and the per-call options of its jobs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from qaio.errors import ConfigError
from qaio.options import check_range


@dataclass(frozen=True, slots=True)
class Policy:
    """Per-task settings of a `Gateway`; `Gateway(app, **defaults)` and `gateway.policy(task, ...)` set them.

    Args:
        cap: the most jobs of this task queued plus running at once, across every gateway that shares
            the cap store (all of them, on Redis). Over it a request gets 503 before anything is queued.
            None: no cap.
        timeout: seconds a job may run once a worker took it before the request gets 504. None: the
            task's own `timeout` option plus one second, or 30 s when it has none.
        confirm_timeout: seconds a worker has to take the job; after that it is withdrawn (503), unless
            a worker took it meanwhile.
        lease: seconds a cap slot lives without renewal. A gateway renews it while it waits; one that
            dies frees its slots within this time.
        retry_after: the Retry-After of 503 answers, in seconds (capped by when a slot surely frees).
        cancel_abandoned: cancel a job whose request is gone (504, or the client disconnected). Its slot
            is held until the job has stopped or the lease runs out, so the cap stays true.
        key: the cap's key; default the task's name, so every route of one task shares one cap.
        keep_results: keep a succeeded job (state and result) for the App's result TTL, to be looked up
            by id later. By default it is deleted once its answer is out: request-reply traffic then
            leaves nothing in the store, where expiring a burst's results later stalls Redis.
        queue, priority, level: per-call options of the jobs (default: the task's own).
    """

    cap: int | None = None
    timeout: float | None = None
    confirm_timeout: float = 5.0
    lease: float = 10.0
    retry_after: float = 1.0
    cancel_abandoned: bool = True
    key: str | None = None
    keep_results: bool = False
    queue: str | None = None
    priority: int | None = None
    level: int | None = None

    def __post_init__(self) -> None:
        if self.cap is not None and self.cap < 0:
            raise ConfigError(f"cap must be >= 0 (or None for no cap), got {self.cap}")
        for name in ("confirm_timeout", "lease", "retry_after"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive seconds, got {getattr(self, name)}")
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigError(f"timeout must be positive seconds, got {self.timeout}")
        for name in ("priority", "level"):
            value = getattr(self, name)
            if value is not None:
                check_range(name, value)

    def replace(self, **changes: Any) -> Policy:
        """A copy with `changes`; unknown names fail with the list of known ones."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            names, choices = ", ".join(sorted(unknown)), ", ".join(sorted(known))
            raise ConfigError(f"unknown gateway option(s) {names}; known: {choices}")
        return dataclasses.replace(self, **changes)

    def call_options(self) -> dict[str, Any]:
        """The options to enqueue with (`Task.with_options`), only those set."""
        return {name: getattr(self, name) for name in ("queue", "priority", "level") if getattr(self, name) is not None}

    def run_timeout(self, task_timeout: float | None) -> float:
        if self.timeout is not None:
            return self.timeout
        return 30.0 if task_timeout is None else task_timeout + 1.0
