"""Task options, checked when a task is declared so mistakes surface at import time."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields, replace
from typing import Any

from qaio.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, capped: delay = random(0, min(cap, base * factor**n))."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the try after `attempt` (1-based) failed."""
        ceiling = min(self.cap, self.base * self.factor ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task runs. `App(defaults=...)` sets them once; `@app.task(...)` overrides per task."""

    queue: str = "default"
    priority: int = 0  #: 0-9, higher runs first
    level: int = 0  #: 0-9; `qaio worker --max-level N` takes only jobs of level N or lower
    retries: int = 0
    backoff: Backoff = Backoff()
    timeout: float | None = None  #: seconds; async: cancelled, thread: abandoned, process: killed
    ttl: float | None = None  #: a job that waited longer than this is discarded as expired
    cpu_bound: bool = False  #: run in the worker's process pool instead of a thread
    rate_limit: str | None = None  #: e.g. "10/s": how fast workers start this task (cluster-wide on Redis)

    def merged(self, overrides: dict[str, Any]) -> TaskOptions:
        """These options with `overrides` applied; unknown names fail with the list of known ones."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            names, choices = ", ".join(sorted(unknown)), ", ".join(sorted(known))
            raise ConfigError(f"unknown task option(s): {names}; known: {choices}")
        given = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(given.get("backoff"), (int, float)):
            given["backoff"] = Backoff(base=float(given["backoff"]))
        options = replace(self, **given)
        options.check()
        return options

    def check(self) -> None:
        check_range("priority", self.priority)
        check_range("level", self.level)
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"retries must be a non-negative int, got {self.retries!r}")
        for name in ("timeout", "ttl"):
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:  # NaN and inf too: JSON has neither
                raise ConfigError(f"{name} must be finite positive seconds, got {value!r}")
        if self.rate_limit is not None:
            from qaio.limits.rates import parse_rate

            parse_rate(self.rate_limit)  # raises ConfigError on a bad rate
        if not self.queue or not isinstance(self.queue, str):
            raise ConfigError(f"queue must be a non-empty string, got {self.queue!r}")


def check_range(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 9:
        raise ConfigError(f"{name} must be an int from 0 to 9, got {value!r}")
