"""Per-task rate limits (`@app.task(rate_limit="10/s")`): how fast workers start a task.

Each start is charged to an nginx-style zone named after the task. On a backend that can share
limiters (Redis) every worker draws on one budget; elsewhere each worker process has its own.
"""

from __future__ import annotations

from qaio.limits.decision import Decision, Limiter
from qaio.limits.local import LocalLimiter
from qaio.limits.rates import parse_rate
from qaio.protocols import Backend, SharedRateLimits
from qaio.task import Task


class TaskRates:
    """The limiters of one worker's rate-limited tasks, made on first use."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._limiters: dict[str, Limiter] = {}

    async def admit(self, task: Task[..., object]) -> Decision:
        """Charge one start of `task`: accepted (maybe after a delay), or rejected with retry_after."""
        limiter = self._limiters.get(task.name)
        if limiter is None:
            limiter = self._limiters[task.name] = self._make(task.name, str(task.options.rate_limit))
        return await limiter.acquire(task.name)

    def _make(self, name: str, rate: str) -> Limiter:
        if isinstance(self._backend, SharedRateLimits):
            return self._backend.rate_limiter(name, rate)
        # A second's worth of starts may queue up (delayed, holding their slot); more are postponed.
        return LocalLimiter(rate, burst=max(1, int(parse_rate(rate))))
