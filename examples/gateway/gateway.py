"""The web side of the gateway example: a FastAPI app that admits requests and hands the work to workers.

    uvicorn examples.gateway.gateway:api            # from the repository root
    qaio worker examples.gateway.tasks:app          # beside it, any number of them, on any machine (Redis)

`/`, `/sync-test` and `/async-test` answer in the request (request-reply, capped per task: 503 over the
cap, 504 past the timeout, 500 with an error id when the task raises); `/jobs/...` runs the same tasks
in the background (POST 202, GET status, GET events as server-sent events, DELETE).
"""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI

from examples.gateway import tasks
from qaio.gateway import RESPONSES, Gateway, RateLimit, jobs_router
from qaio.limits import LocalLimiter, TokenBucket

gateway = Gateway(tasks.app, confirm_timeout=5.0, timeout=10.0)
# The most jobs of each task queued plus running, over every gateway process on the same Redis.
gateway.policy(tasks.hello, cap=int(os.environ.get("QAIO_HELLO_CAP", "9999")))
gateway.policy(tasks.prime_check, cap=int(os.environ.get("QAIO_PRIME_CAP", "320")))
gateway.policy(tasks.fibonacci, cap=1000)

# Floods are refused in the gateway itself, before any shared state is touched (fastapi-queue's
# RateLimiter(bucket=5000, limits_s=1000)): QAIO_FLOOD="capacity,refill per second", or "off".
# Each client also gets its own nginx-style budget for background jobs.
FLOOD = os.environ.get("QAIO_FLOOD", "5000,1000")
flood = [] if FLOOD == "off" else [Depends(RateLimit(TokenBucket(*map(float, FLOOD.split(","))), status_code=503))]
per_client = RateLimit(LocalLimiter("20r/s", burst=40, nodelay=True))

api = FastAPI(title="qaio gateway example", lifespan=gateway.lifespan, dependencies=flood)


@api.get("/", responses=RESPONSES)
async def root() -> dict[str, object]:
    return {"status": 200, "data": await gateway.call(tasks.hello)}


@api.get("/sync-test", responses=RESPONSES)
async def sync_test(x: int) -> dict[str, object]:
    prime = await gateway.call(tasks.prime_check, x=x)
    return {"status": 200, "data": prime}


@api.get("/async-test", responses=RESPONSES)
async def async_test(n: int) -> dict[str, object]:
    number = await gateway.call(tasks.fibonacci, n=min(n, 80))
    return {"status": 200, "data": number}


api.include_router(
    jobs_router(tasks.app, tasks=[tasks.prime_check, tasks.fibonacci], dependencies=[Depends(per_client)])
)
