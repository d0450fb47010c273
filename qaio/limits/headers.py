"""RateLimit headers for HTTP responses, from a decision, with no web framework imported."""

from __future__ import annotations

import math

from qaio.limits.decision import Decision, Quota


def rate_limit_headers(decision: Decision, quota: Quota) -> dict[str, str]:
    """`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and, on rejection, `Retry-After`.

    The field names follow the IETF httpapi draft (drafts 00-06, before the structured `RateLimit` field)
    and are what most clients read. Values are whole numbers, as the draft and RFC 9110 require:
    Remaining is how many more requests would pass right now, Reset the seconds until the bucket is
    empty again, Retry-After the seconds until a rejected request would pass (rounded up, at least 1).
    """
    remaining = max(0, math.floor(quota.burst - decision.excess + 1e-9)) if decision.accepted else 0
    reset = max(0, math.ceil(decision.excess / quota.rate - 1e-9))
    headers = {
        "RateLimit-Limit": str(quota.limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }
    if not decision.accepted:
        wait = decision.retry_after if decision.retry_after is not None else reset
        headers["Retry-After"] = str(max(1, math.ceil(wait - 1e-9)))
    return headers
