"""`@limit`: put any coroutine function behind a limiter, per key, the way nginx fronts a location."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, ParamSpec, TypeVar

from qaio.limits.decision import Limiter
from qaio.limits.errors import TooManyRequests

P = ParamSpec("P")
R = TypeVar("R")

Mode = Literal["delay", "raise"]


def limit(
    limiter: Limiter,
    *,
    key: Callable[..., str] | str | None = None,
    cost: int = 1,
    mode: Mode = "delay",
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Limit calls of the decorated coroutine function through `limiter`.

    `key` is called with the call's arguments (or is a fixed string) and names the budget to charge;
    by default the function's qualified name, so all its calls share one budget.
    With mode="delay" an accepted call first sleeps the limiter's delay, as nginx holds a request; with
    mode="raise" it runs at once (nginx's `nodelay`, so configure the limiter with `nodelay` to match).
    Either way a rejected call raises `TooManyRequests` carrying `retry_after`, and never runs.
    """
    if mode not in ("delay", "raise"):
        raise ValueError(f"mode must be 'delay' or 'raise', got {mode!r}")

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@limit needs a coroutine function, got {fn!r}")
        fixed = key if isinstance(key, str) else getattr(fn, "__qualname__", repr(fn))
        key_of: Callable[..., str] = key if callable(key) else (lambda *args, **kwargs: fixed)

        @functools.wraps(fn)
        async def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            name = key_of(*args, **kwargs)
            decision = await limiter.acquire(name, cost=cost)
            if not decision.accepted:
                raise TooManyRequests(name, decision)
            if mode == "delay" and decision.delay > 0:
                await sleep(decision.delay)
            return await fn(*args, **kwargs)

        return limited

    return decorate
