"""The FastAPI gateway: request-reply with admission control, background-job routes, rate limits.

    gateway = Gateway(app, cap=100, timeout=10)              # app: the qaio App of the workers
    api = FastAPI(lifespan=gateway.lifespan)

    @api.get("/prime")
    async def prime(n: int) -> dict[str, bool]:
        return {"prime": await gateway.call(prime_check, n=n)}   # 503 / 504 / 500 as HTTP answers

    api.include_router(jobs_router(app, tasks=[fibonacci]))   # POST 202, GET, SSE events, DELETE

Needs the `fastapi` extra. Nothing here starts workers: run `qaio worker module:app` beside it.
"""

from __future__ import annotations

from qaio.gateway.admission import Admission, Slot, shared_cap
from qaio.gateway.call import Admitted, Gateway
from qaio.gateway.errors import (
    RESPONSES,
    GatewayError,
    InternalError,
    Overloaded,
    RunTimeout,
    Unavailable,
)
from qaio.gateway.models import JobAccepted, JobCancelled, JobInfo, args_model
from qaio.gateway.policy import Policy
from qaio.gateway.ratelimit import RateLimit, client_ip, header
from qaio.gateway.router import jobs_router

__all__ = [
    "RESPONSES",
    "Admission",
    "Admitted",
    "Gateway",
    "GatewayError",
    "InternalError",
    "JobAccepted",
    "JobCancelled",
    "JobInfo",
    "Overloaded",
    "Policy",
    "RateLimit",
    "RunTimeout",
    "Slot",
    "Unavailable",
    "args_model",
    "client_ip",
    "header",
    "jobs_router",
    "shared_cap",
]
