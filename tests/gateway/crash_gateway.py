"""A gateway for the kill -9 test (run by uvicorn in a child process): its one route waits for a job no
worker will claim, holding a slot of a cap of 1 with a 1 s lease."""

from __future__ import annotations

import os

from fastapi import FastAPI

from qaio.gateway import Gateway

from .apps import build

app, tasks = build(os.environ["QAIO_URL"])
gateway = Gateway(app, cap=1, lease=1.0, confirm_timeout=30.0)
api = FastAPI(lifespan=gateway.lifespan)


@api.get("/health")
async def health() -> str:
    return "ok"


@api.get("/wait")
async def wait() -> str:
    return await gateway.call(tasks.hello)
