"""The error a limited call raises, inside qaio's one exception hierarchy."""

from __future__ import annotations

from qaio.errors import QaioError
from qaio.limits.decision import Decision


class TooManyRequests(QaioError):
    """A limiter rejected the call. `retry_after` (seconds) says when the same call would pass."""

    def __init__(self, key: str, decision: Decision) -> None:
        self.key = key
        self.decision = decision
        self.retry_after = decision.retry_after
        hint = f"; retry after {decision.retry_after:.3f} s" if decision.retry_after is not None else ""
        super().__init__(f"too many requests for key {key!r} (excess {decision.excess:.3f}){hint}")
