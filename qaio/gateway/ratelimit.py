"""Rate limits as FastAPI dependencies: `dependencies=[Depends(RateLimit(LocalLimiter("10r/s", burst=20)))]`.

A dependency runs before the route body, so a rejected request never reaches the queue. Any limiter of
`qaio.limits` works: an nginx zone keyed per client (`LocalLimiter` in this process, `RedisLimiter` shared
by every gateway) or a per-process `TokenBucket` (one budget for the whole process, no key). Answers
carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset, and Retry-After on rejection.

The headers of an accepted request go on FastAPI's `Response` parameter, which FastAPI applies when
the route returns data; a route that returns its own `Response` copies them (see the jobs router's
event stream).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from fastapi import Depends, HTTPException, Request, Response

from qaio.limits.decision import Decision, Limiter, Quota
from qaio.limits.headers import rate_limit_headers
from qaio.limits.token_bucket import TokenBucket

KeyFunc = Callable[[Request], str]


def client_ip(request: Request) -> str:
    """The peer's address. Behind a proxy, run uvicorn with `--proxy-headers --forwarded-allow-ips=...`
    so this is the client's, from X-Forwarded-For of trusted proxies only (never trust it blindly)."""
    return request.client.host if request.client is not None else "-"


def header(name: str, *, missing: str = "-") -> KeyFunc:
    """Key by a request header (an API key, a tenant id); requests without it share the `missing` key."""

    def key(request: Request) -> str:
        return request.headers.get(name) or missing

    return key


class RateLimit:
    """A FastAPI dependency that charges one limiter per request.

    Args:
        limiter: a `Limiter` (nginx zone, local or Redis) or a `TokenBucket` (per process, unkeyed).
        key: names the budget to charge: a function of the request (sync or async; default the client
            IP). With `subject=`, a function of that dependency's value instead (e.g. the user).
        subject: a FastAPI dependency whose value keys the limit, e.g. `subject=current_user,
            key=lambda user: user.id`; it runs first (so authentication failures are answered first).
        status_code: of a rejection; 429 by default, 503 to match nginx's limit_req default.
        cost: requests charged per call.
        delay: hold an accepted request for the limiter's delay (nginx `delay=`); False answers at once.
    """

    def __init__(
        self,
        limiter: Limiter | TokenBucket,
        *,
        key: Callable[..., Any] = client_ip,
        subject: Callable[..., Any] | None = None,
        status_code: int = 429,
        cost: int = 1,
        delay: bool = True,
    ) -> None:
        self.limiter = limiter
        self.key = key
        self.status_code = status_code
        self.cost = cost
        self.delay = delay
        self.quota: Quota | None = getattr(limiter, "quota", None)
        params = [
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
            inspect.Parameter("response", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Response),
        ]
        if subject is not None:
            params.append(
                inspect.Parameter("subject", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=Depends(subject))
            )
        self.__signature__ = inspect.Signature(params)
        self._keyed_by_subject = subject is not None

    async def __call__(self, request: Request, response: Response, subject: Any = None) -> Decision:
        decision = await self.decide(request, subject)
        headers = rate_limit_headers(decision, self.quota) if self.quota is not None else {}
        if not decision.accepted:
            detail = "too many requests" if self.status_code == 429 else "service temporarily unavailable"
            raise HTTPException(self.status_code, detail, headers=headers)
        response.headers.update(headers)
        if self.delay and decision.delay > 0:
            await asyncio.sleep(decision.delay)
        return decision

    async def decide(self, request: Request, subject: Any = None) -> Decision:
        """Charge the request's key (or the bucket) and return the decision."""
        if isinstance(self.limiter, TokenBucket):
            return self.limiter.try_acquire(self.cost)
        name = self.key(subject) if self._keyed_by_subject else self.key(request)
        if inspect.isawaitable(name):
            name = await name
        return await self.limiter.acquire(str(name), cost=self.cost)
